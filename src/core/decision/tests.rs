//! The decision without a process: every reason, every refusal, every callback answer.

use super::*;
use crate::core::policy::Keep;

fn env<'a>(pairs: &[(&'a str, &'a str)]) -> DagzEnv<'a> {
    DagzEnv::from_pairs(pairs.iter().copied())
}

fn policy_of(e: &DagzEnv) -> Result<Arc<Policy>, String> {
    e.policy(&|p| Err(std::io::Error::other(format!("no file {p} in tests"))))
        .map(Arc::new)
}

const FREE: ThreadState = ThreadState {
    bypass: false,
    in_callback: false,
};

/// The decision for `name` under the environment `pairs`, without a callback.
fn run(engine: Engine, name: &str, pairs: &[(&str, &str)]) -> Outcome {
    let e = env(pairs);
    decide(engine, name, FREE, &e, &policy_of(&e), None)
}

fn with_cb(name: &str, answer: Result<CbAnswer, String>) -> Outcome {
    let e = env(&[("DAGZ_WORKER", "3")]);
    let mut seen = Vec::new();
    let mut cb = |eng: Engine, n: &str| {
        seen.push((eng, n.to_owned()));
        answer.clone()
    };
    let out = decide(
        Engine::Postgres,
        name,
        FREE,
        &e,
        &policy_of(&e),
        Some(&mut cb),
    );
    assert_eq!(seen, vec![(Engine::Postgres, name.to_owned())]);
    out
}

fn keep(reason: KeepReason) -> Outcome {
    Outcome::Keep { reason }
}

#[test]
fn reroutes_with_the_template() {
    assert_eq!(
        run(Engine::Postgres, "myapp", &[("DAGZ_WORKER", "3")]),
        Outcome::Reroute {
            name: "myapp_jw03".into(),
            worker: 3,
            callback: false
        }
    );
    assert_eq!(
        run(Engine::Mysql, "shop", &[("PYTEST_XDIST_WORKER", "gw12")]),
        Outcome::Reroute {
            name: "shop_jw12".into(),
            worker: 12,
            callback: false
        }
    );
    // No worker variable: worker 0.
    assert_eq!(
        run(Engine::Postgres, "a", &[]).into_result("a"),
        Ok(Some("a_jw00".into()))
    );
}

#[test]
fn every_keep_reason() {
    let w = [("DAGZ_WORKER", "3")];
    let e = env(&w);
    let p = policy_of(&e);
    let t = |bypass, in_callback| ThreadState {
        bypass,
        in_callback,
    };
    let d = |th| decide(Engine::Postgres, "myapp", th, &e, &p, None);
    assert_eq!(d(t(true, false)), keep(KeepReason::Bypass));
    assert_eq!(d(t(false, true)), keep(KeepReason::InCallback));
    assert_eq!(d(t(true, true)), keep(KeepReason::Bypass));
    for dis in ["1", "pg", "all", "postgres,mysql"] {
        assert_eq!(
            run(
                Engine::Postgres,
                "myapp",
                &[("DAGZ_WORKER", "3"), ("DAGZ_DISABLE", dis)]
            ),
            keep(KeepReason::EngineDisabled),
            "{dis}"
        );
    }
    assert_ne!(
        run(Engine::Mysql, "myapp", &[("DAGZ_DISABLE", "pg")]),
        keep(KeepReason::EngineDisabled)
    );
    assert_eq!(
        run(Engine::Postgres, "postgres", &w),
        keep(KeepReason::Policy(Keep::System))
    );
    assert_eq!(
        run(Engine::Mysql, "INFORMATION_SCHEMA", &w),
        keep(KeepReason::Policy(Keep::System))
    );
    assert_eq!(
        run(Engine::Postgres, "myapp_jw03", &w),
        keep(KeepReason::Policy(Keep::AlreadyRerouted))
    );
    assert_eq!(
        run(Engine::Postgres, "", &w),
        keep(KeepReason::Policy(Keep::Empty))
    );
}

#[test]
fn every_refusal() {
    let refused = |o: Outcome| match o {
        Outcome::Refuse { error } => error,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let e = refused(run(Engine::Postgres, "myapp", &[("DAGZ_WORKER", "x")]));
    assert!(e.contains("DAGZ_WORKER=\"x\""), "{e}");
    let e = refused(run(
        Engine::Postgres,
        "myapp",
        &[("PYTEST_XDIST_WORKER", "w1")],
    ));
    assert!(e.contains("PYTEST_XDIST_WORKER"), "{e}");
    let e = refused(run(
        Engine::Postgres,
        "myapp",
        &[("DAGZ_WORKER_COUNT", "0")],
    ));
    assert!(e.contains("DAGZ_WORKER_COUNT"), "{e}");
    let e = refused(run(Engine::Postgres, "myapp", &[("DAGZ_DISABLE", "maybe")]));
    assert!(e.starts_with("DAGZ_DISABLE="), "{e}");
    let e = refused(run(
        Engine::Postgres,
        "myapp",
        &[("DAGZ_POLICY", "/p.toml")],
    ));
    assert!(e.starts_with("policy file /p.toml: no file"), "{e}");
    let long = "x".repeat(60);
    let e = refused(run(Engine::Postgres, &long, &[("DAGZ_WORKER", "3")]));
    assert!(e.contains("over the PostgreSQL limit"), "{e}");
    // A broken policy refuses even a system database (fail closed), but a bypass keeps.
    let bad = env(&[("DAGZ_DISABLE", "maybe")]);
    let p = policy_of(&bad);
    assert!(matches!(
        decide(Engine::Postgres, "postgres", FREE, &bad, &p, None),
        Outcome::Refuse { .. }
    ));
    let bypass = ThreadState {
        bypass: true,
        in_callback: false,
    };
    assert_eq!(
        decide(Engine::Postgres, "postgres", bypass, &bad, &p, None),
        keep(KeepReason::Bypass)
    );
}

#[test]
fn callback_answers() {
    assert_eq!(
        with_cb("myapp", Ok(CbAnswer::Keep)),
        keep(KeepReason::Callback)
    );
    assert_eq!(
        with_cb("myapp", Ok(CbAnswer::Reroute("other".into()))),
        Outcome::Reroute {
            name: "other".into(),
            worker: 3,
            callback: true
        }
    );
    // Default: the policy decides.
    assert_eq!(
        with_cb("myapp", Ok(CbAnswer::Default)).into_result("myapp"),
        Ok(Some("myapp_jw03".into()))
    );
    // The callback is asked before the policy's system-database rule.
    assert_eq!(
        with_cb("postgres", Ok(CbAnswer::Reroute("postgres_x".into()))).into_result("postgres"),
        Ok(Some("postgres_x".into()))
    );
    assert_eq!(
        with_cb("myapp", Err("no: bad".into())),
        Outcome::Refuse {
            error: "no: bad".into()
        }
    );
    assert_eq!(
        with_cb("myapp", Err("dagz: prefixed".into())),
        Outcome::Refuse {
            error: "prefixed".into()
        }
    );
    let long = "y".repeat(64);
    assert!(matches!(
        with_cb("myapp", Ok(CbAnswer::Reroute(long))),
        Outcome::Refuse { error } if error.contains("over the 63-byte limit of pg")
    ));
    // Rerouting to the same name changes nothing.
    assert_eq!(
        with_cb("myapp", Ok(CbAnswer::Reroute("myapp".into()))).into_result("myapp"),
        Ok(None)
    );
}

#[test]
fn callback_not_called_when_decided_before() {
    let e = env(&[("DAGZ_DISABLE", "1")]);
    let mut called = false;
    let mut cb = |_: Engine, _: &str| {
        called = true;
        Ok(CbAnswer::Keep)
    };
    let out = decide(
        Engine::Postgres,
        "myapp",
        FREE,
        &e,
        &policy_of(&e),
        Some(&mut cb),
    );
    assert_eq!(out, keep(KeepReason::EngineDisabled));
    assert!(!called);
}

#[test]
fn callback_codes() {
    assert_eq!(cb_answer(CB_KEEP, "ignored"), Ok(CbAnswer::Keep));
    assert_eq!(
        cb_answer(CB_REROUTE, "n"),
        Ok(CbAnswer::Reroute("n".into()))
    );
    assert!(cb_answer(CB_REROUTE, "").is_err());
    assert_eq!(cb_answer(CB_DEFAULT, ""), Ok(CbAnswer::Default));
    assert_eq!(
        cb_answer(CB_ERROR, ""),
        Err("decision callback failed".into())
    );
    assert_eq!(cb_answer(CB_ERROR, "dagz: no"), Err("no".into()));
    assert_eq!(
        cb_answer(7, ""),
        Err("decision callback returned unknown code 7".into())
    );
}

#[test]
fn early_decision_needs_no_name() {
    let on = Ok(Arc::new(Policy::default()));
    let off = env(&[("DAGZ_DISABLE", "mysql")]);
    let off = policy_of(&off);
    assert_eq!(decide_early(Engine::Postgres, FREE, Some(&on)), None);
    assert_eq!(decide_early(Engine::Postgres, FREE, None), None);
    assert_eq!(
        decide_early(Engine::Mysql, FREE, Some(&off)),
        Some(keep(KeepReason::EngineDisabled))
    );
    assert_eq!(decide_early(Engine::Postgres, FREE, Some(&off)), None);
    // An error is never decided early: the full decision refuses with it.
    assert_eq!(
        decide_early(Engine::Postgres, FREE, Some(&Err("x".into()))),
        None
    );
}

#[test]
fn env_reads_only_its_names() {
    let mut e = DagzEnv::default();
    e.set(b"DAGZ_WORKER", b"4");
    e.set(b"DAGZ_WORKERS", b"9");
    e.set(b"PATH", b"/bin");
    assert_eq!(e.get("DAGZ_WORKER"), Some("4"));
    assert_eq!(e.get("PATH"), None);
    assert_eq!(e.worker(), Ok(Worker { num: 4, count: 1 }));
    assert_eq!(env(&[("DAGZ_POLICY", "")]).policy_key(), (None, None));
}

#[test]
fn rename_overrides_the_template_after_the_policy_and_keeps_the_fresh_name() {
    let over = [
        ("DAGZ_WORKER", "3"),
        ("DAGZ_RENAME", "pg:myapp=myapp_jw03_f1"),
    ];
    assert_eq!(
        run(Engine::Postgres, "myapp", &over),
        Outcome::Reroute {
            name: "myapp_jw03_f1".into(),
            worker: 3,
            callback: false
        }
    );
    assert_eq!(
        run(Engine::Postgres, "myapp_jw03_f1", &over),
        keep(KeepReason::Policy(Keep::AlreadyRerouted))
    );
    // Other engines and names, system databases: the policy as before.
    assert_eq!(
        run(Engine::Mysql, "myapp", &over),
        Outcome::Reroute {
            name: "myapp_jw03".into(),
            worker: 3,
            callback: false
        }
    );
    let sys = [("DAGZ_RENAME", "postgres=postgres_x")];
    assert_eq!(
        run(Engine::Postgres, "postgres", &sys),
        keep(KeepReason::Policy(Keep::System))
    );
    // A malformed value refuses rather than routes by half of it.
    let bad = run(Engine::Postgres, "myapp", &[("DAGZ_RENAME", "myapp")]);
    assert!(matches!(bad, Outcome::Refuse { ref error } if error.contains("DAGZ_RENAME")));
}

#[test]
fn rename_is_ignored_when_the_callback_decides() {
    let e = env(&[("DAGZ_RENAME", "myapp=myapp_f")]);
    let mut cb = |_: Engine, _: &str| Ok(CbAnswer::Reroute("from_cb".into()));
    let out = decide(
        Engine::Postgres,
        "myapp",
        FREE,
        &e,
        &policy_of(&e),
        Some(&mut cb),
    );
    assert!(matches!(out, Outcome::Reroute { ref name, .. } if name == "from_cb"));
}
