//! Tests of the policy.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn w(num: u32) -> Worker {
    Worker { num, count: 4 }
}

fn reroute(p: &Policy, e: Engine, name: &str, num: u32) -> Decision {
    p.decide(e, name, &w(num)).unwrap()
}

#[test]
fn default_template_spelled_out() {
    assert_eq!(
        Template::parse(DEFAULT_TEMPLATE).unwrap(),
        Template::default_template()
    );
}

#[test]
fn engine_facts() {
    assert_eq!(Engine::Postgres.max_name_len(), 63);
    assert_eq!(Engine::Mysql.max_name_len(), 64);
    assert_eq!(Engine::Postgres.label(), "pg");
    assert_eq!(Engine::Mysql.label(), "mysql");
    assert_eq!(
        Engine::Postgres.system_databases(),
        &["postgres", "template0", "template1"]
    );
    assert_eq!(
        Engine::Mysql.system_databases(),
        &["mysql", "information_schema", "performance_schema", "sys"]
    );
}

#[test]
fn worker_env() {
    assert_eq!(worker_from_env(&env(&[])), Ok(Worker { num: 0, count: 1 }));
    assert_eq!(
        worker_from_env(&env(&[
            ("PYTEST_XDIST_WORKER", "gw12"),
            ("PYTEST_XDIST_WORKER_COUNT", "16")
        ])),
        Ok(Worker { num: 12, count: 16 })
    );
    assert_eq!(
        worker_from_env(&env(&[
            ("DAGZ_WORKER", "5"),
            ("PYTEST_XDIST_WORKER", "gw1")
        ])),
        Ok(Worker { num: 5, count: 1 })
    );
    assert_eq!(
        worker_from_env(&env(&[("DAGZ_WORKER", ""), ("PYTEST_XDIST_WORKER", "gw3")])),
        Ok(Worker { num: 3, count: 1 })
    );
    assert_eq!(
        worker_from_env(&env(&[
            ("DAGZ_WORKER_COUNT", "3"),
            ("PYTEST_XDIST_WORKER_COUNT", "8")
        ])),
        Ok(Worker { num: 0, count: 3 })
    );
    assert_eq!(
        worker_from_env(&env(&[("DAGZ_WORKER", "abc")])),
        Err("DAGZ_WORKER=\"abc\" is not a worker number".to_owned())
    );
    for bad in ["gw", "3", "gwx", "gw-1", "master", "gw99999999999"] {
        let e = worker_from_env(&env(&[("PYTEST_XDIST_WORKER", bad)])).unwrap_err();
        assert!(e.contains("PYTEST_XDIST_WORKER") && e.contains(bad), "{e}");
    }
    for bad in ["-1", " 1", "1.0", "+2"] {
        assert!(
            worker_from_env(&env(&[("DAGZ_WORKER", bad)])).is_err(),
            "{bad}"
        );
    }
    let e = worker_from_env(&env(&[("PYTEST_XDIST_WORKER_COUNT", "0")])).unwrap_err();
    assert_eq!(e, "PYTEST_XDIST_WORKER_COUNT=\"0\" is not a worker count");
    assert!(worker_from_env(&env(&[("DAGZ_WORKER_COUNT", "x")])).is_err());
}

#[test]
fn default_policy() {
    let p = Policy::default();
    assert!(p.enabled(Engine::Postgres) && p.enabled(Engine::Mysql));
    assert_eq!(
        reroute(&p, Engine::Postgres, "myapp", 3),
        Decision::Reroute("myapp_jw03".into())
    );
    assert_eq!(
        reroute(&p, Engine::Postgres, "myapp", 112),
        Decision::Reroute("myapp_jw112".into())
    );
    assert_eq!(
        reroute(&p, Engine::Mysql, "myapp", 0),
        Decision::Reroute("myapp_jw00".into())
    );
    assert_eq!(
        reroute(&p, Engine::Postgres, "", 3),
        Decision::Keep(Keep::Empty)
    );
    for s in ["postgres", "template0", "template1"] {
        assert_eq!(
            reroute(&p, Engine::Postgres, s, 3),
            Decision::Keep(Keep::System)
        );
    }
    // Only MySQL's system schemas are case-insensitive.
    assert_eq!(
        reroute(&p, Engine::Postgres, "Postgres", 3),
        Decision::Reroute("Postgres_jw03".into())
    );
    for s in [
        "mysql",
        "information_schema",
        "INFORMATION_SCHEMA",
        "performance_schema",
        "sys",
    ] {
        assert_eq!(
            reroute(&p, Engine::Mysql, s, 3),
            Decision::Keep(Keep::System)
        );
    }
    assert_eq!(
        reroute(&p, Engine::Mysql, "postgres", 1),
        Decision::Reroute("postgres_jw01".into())
    );
    assert_eq!(p.suffix(Engine::Postgres, &w(3)), "_jw03");
    assert_eq!(p.suffix(Engine::Mysql, &w(112)), "_jw112");
}

#[test]
fn idempotent_and_already_rerouted() {
    let p = Policy::default();
    for name in ["myapp_jw03", "myapp_jw05", "myapp_jw112", "_jw00"] {
        assert_eq!(
            reroute(&p, Engine::Postgres, name, 3),
            Decision::Keep(Keep::AlreadyRerouted),
            "{name}"
        );
    }
    // One digit is not a `_jwNN` suffix.
    assert_eq!(
        reroute(&p, Engine::Postgres, "x_jw3", 3),
        Decision::Reroute("x_jw3_jw03".into())
    );
    assert_eq!(
        reroute(&p, Engine::Postgres, "x_jwab", 3),
        Decision::Reroute("x_jwab_jw03".into())
    );
    // A custom template's own shape counts for this worker.
    let p = Policy::from_toml("[postgres]\ntemplate = \"t_{db}_w{worker}\"\n", "p.toml").unwrap();
    assert_eq!(
        reroute(&p, Engine::Postgres, "app", 7),
        Decision::Reroute("t_app_w7".into())
    );
    assert_eq!(
        reroute(&p, Engine::Postgres, "t_app_w7", 7),
        Decision::Keep(Keep::AlreadyRerouted)
    );
    assert_eq!(
        reroute(&p, Engine::Postgres, "t_app_w7", 8),
        Decision::Reroute("t_t_app_w7_w8".into())
    );
    assert_eq!(p.suffix(Engine::Postgres, &w(7)), "_w7");
}

#[test]
fn length_limits() {
    let p = Policy::default();
    let base58 = "a".repeat(58);
    // 58 + 5 = 63 fits PostgreSQL exactly.
    assert_eq!(
        reroute(&p, Engine::Postgres, &base58, 3),
        Decision::Reroute(format!("{base58}_jw03"))
    );
    let base59 = "a".repeat(59);
    let e = p.decide(Engine::Postgres, &base59, &w(3)).unwrap_err();
    assert!(
        e.contains("64 bytes") && e.contains("63") && e.contains(&base59),
        "{e}"
    );
    assert!(!e.contains('\n'));
    // MySQL allows 64.
    assert_eq!(
        reroute(&p, Engine::Mysql, &base59, 3),
        Decision::Reroute(format!("{base59}_jw03"))
    );
    let e = p.render(Engine::Mysql, &"b".repeat(60), &w(3)).unwrap_err();
    assert!(e.contains("65 characters") && e.contains("64"), "{e}");
    // PostgreSQL counts bytes.
    let e = p
        .decide(Engine::Postgres, &"é".repeat(30), &w(3))
        .unwrap_err();
    assert!(e.contains("65 bytes"), "{e}");
}

/// Issue 12: MariaDB's limit is 64 characters, not bytes.
#[test]
fn a_mariadb_name_of_35_characters_and_65_bytes_is_accepted() {
    let p = Policy::default();
    let base = "é".repeat(30); // 30 characters, 60 bytes; + "_jw03" = 35 characters, 65 bytes
    let new = format!("{base}_jw03");
    assert_eq!((new.chars().count(), new.len()), (35, 65));
    assert_eq!(reroute(&p, Engine::Mysql, &base, 3), Decision::Reroute(new));
    assert!(p.decide(Engine::Postgres, &base, &w(3)).is_err());
    let base60 = "é".repeat(60); // 65 characters rendered: over
    let e = p.decide(Engine::Mysql, &base60, &w(3)).unwrap_err();
    assert!(e.contains("65 characters") && e.contains("64"), "{e}");
}

#[test]
fn render_has_no_checks_but_length() {
    let p = Policy::default();
    assert_eq!(
        p.render(Engine::Postgres, "postgres", &w(2)).unwrap(),
        "postgres_jw02"
    );
    assert_eq!(
        p.render(Engine::Postgres, "x_jw02", &w(2)).unwrap(),
        "x_jw02_jw02"
    );
    let p = Policy::from_toml(
        "[mysql]\ntemplate = \"{db}_{worker:03}_of_{worker_count}\"",
        "p",
    )
    .unwrap();
    assert_eq!(
        p.render(Engine::Mysql, "d", &Worker { num: 7, count: 12 })
            .unwrap(),
        "d_007_of_12"
    );
    assert_eq!(
        p.render(
            Engine::Mysql,
            "d",
            &Worker {
                num: 1234,
                count: 12
            }
        )
        .unwrap(),
        "d_1234_of_12"
    );
    assert_eq!(p.render(Engine::Postgres, "d", &w(1)).unwrap(), "d_jw01");
}

#[test]
fn lists_and_globs() {
    let text = r#"
[postgres]
reroute = ["myapp", "myapp_*", "t?st"]
skip = ["myapp_legacy*"]
"#;
    let p = Policy::from_toml(text, "/x/p.toml").unwrap();
    let pg = Engine::Postgres;
    assert_eq!(
        reroute(&p, pg, "myapp", 1),
        Decision::Reroute("myapp_jw01".into())
    );
    assert_eq!(
        reroute(&p, pg, "myapp_x", 1),
        Decision::Reroute("myapp_x_jw01".into())
    );
    assert_eq!(
        reroute(&p, pg, "myapp_", 1),
        Decision::Reroute("myapp__jw01".into())
    );
    assert_eq!(
        reroute(&p, pg, "test", 1),
        Decision::Reroute("test_jw01".into())
    );
    assert_eq!(reroute(&p, pg, "teest", 1), Decision::Keep(Keep::NotListed));
    assert_eq!(reroute(&p, pg, "other", 1), Decision::Keep(Keep::NotListed));
    assert_eq!(
        reroute(&p, pg, "myapp_legacy_1", 1),
        Decision::Keep(Keep::Skipped)
    );
    // The MySQL side still uses the defaults.
    assert_eq!(
        reroute(&p, Engine::Mysql, "other", 1),
        Decision::Reroute("other_jw01".into())
    );
    let g = |p: &str, n: &str| Glob::new(p).matches(&n.chars().collect::<Vec<_>>());
    assert!(g("*", ""));
    assert!(g("*", "abc"));
    assert!(g("a*b*c", "aXXbYYc"));
    assert!(g("a*b*c", "abcbc"));
    assert!(!g("a*b*c", "aXXbYY"));
    assert!(g("**a", "a"));
    assert!(g("?é?", "xéy"));
    assert!(!g("?", ""));
    assert!(!g("", "a"));
    assert!(g("", ""));
    assert!(g("a*", "a"));
    assert!(!g("abc", "ab"));
    // An empty allow-list keeps everything.
    let p = Policy::from_toml("[mysql]\nreroute = []", "p").unwrap();
    assert_eq!(
        reroute(&p, Engine::Mysql, "x", 1),
        Decision::Keep(Keep::NotListed)
    );
}

#[test]
fn decision_order() {
    let text = "[postgres]\nreroute=[\"*\"]\nskip=[\"postgres\", \"*_jw*\", \"s*\"]\n";
    let p = Policy::from_toml(text, "p").unwrap();
    assert_eq!(
        reroute(&p, Engine::Postgres, "postgres", 1),
        Decision::Keep(Keep::System)
    );
    assert_eq!(
        reroute(&p, Engine::Postgres, "a_jw01", 1),
        Decision::Keep(Keep::AlreadyRerouted)
    );
    assert_eq!(
        reroute(&p, Engine::Postgres, "shared", 1),
        Decision::Keep(Keep::Skipped)
    );
    let p = p.with_env(&env(&[("DAGZ_DISABLE", "pg")])).unwrap();
    assert_eq!(
        reroute(&p, Engine::Postgres, "postgres", 1),
        Decision::Keep(Keep::EngineDisabled)
    );
    assert_eq!(
        reroute(&p, Engine::Postgres, "", 1),
        Decision::Keep(Keep::Empty)
    );
}

#[test]
fn disable_env() {
    let on = |v: &str| {
        let p = Policy::default()
            .with_env(&env(&[("DAGZ_DISABLE", v)]))
            .unwrap();
        (p.enabled(Engine::Postgres), p.enabled(Engine::Mysql))
    };
    assert_eq!(on(""), (true, true));
    assert_eq!(on("0"), (true, true));
    assert_eq!(on("1"), (false, false));
    assert_eq!(on("true"), (false, false));
    assert_eq!(on("all"), (false, false));
    assert_eq!(on("pg"), (false, true));
    assert_eq!(on("mysql"), (true, false));
    assert_eq!(on("pg,mysql"), (false, false));
    assert_eq!(on(" PG , "), (false, true));
    let p = Policy::default().with_env(&env(&[])).unwrap();
    assert!(p.enabled(Engine::Postgres));
    let e = Policy::default()
        .with_env(&env(&[("DAGZ_DISABLE", "maybe")]))
        .unwrap_err();
    assert!(e.starts_with("DAGZ_DISABLE=\"maybe\""), "{e}");
    assert!(Policy::default()
        .with_env(&env(&[("DAGZ_DISABLE", "pg,oracle")]))
        .is_err());
    assert_eq!(
        reroute(
            &Policy::default()
                .with_env(&env(&[("DAGZ_DISABLE", "1")]))
                .unwrap(),
            Engine::Mysql,
            "a",
            1
        ),
        Decision::Keep(Keep::EngineDisabled)
    );
}

#[test]
fn toml_switches() {
    let p = Policy::from_toml("disable = true", "p").unwrap();
    assert!(!p.enabled(Engine::Postgres) && !p.enabled(Engine::Mysql));
    let p = Policy::from_toml("[mysql]\nenabled = false\n", "p").unwrap();
    assert!(p.enabled(Engine::Postgres) && !p.enabled(Engine::Mysql));
    let p = Policy::from_toml("postgres.enabled = false\n", "p").unwrap();
    assert!(!p.enabled(Engine::Postgres));
    let p = Policy::from_toml("", "p").unwrap();
    assert!(p.enabled(Engine::Postgres));
    let p = Policy::from_toml("# only a comment\n[postgres]\n[mysql]\n", "p").unwrap();
    assert!(p.enabled(Engine::Mysql));
}

fn toml_err(text: &str) -> String {
    let e = Policy::from_toml(text, "/x/p.toml").unwrap_err();
    assert!(!e.contains('\n'), "{e}");
    assert!(e.starts_with("policy /x/p.toml"), "{e}");
    e
}

#[test]
fn toml_errors_name_line_and_key() {
    let e = toml_err("# c\n\n[postgres]\ntempalte = \"{db}_x\"\n");
    assert!(
        e.starts_with("policy /x/p.toml line 4: unknown key \"tempalte\" in [postgres]"),
        "{e}"
    );
    let e = toml_err("[mysql]\nreroute = \"myapp\"\n");
    assert!(
        e.starts_with("policy /x/p.toml line 2: key \"reroute\" must be a list of strings"),
        "{e}"
    );
    let e = toml_err("[mysql]\n\nskip = [\"a\", 1]\n");
    assert!(
        e.starts_with("policy /x/p.toml line 3: key \"skip\" must be a list of strings"),
        "{e}"
    );
    let e = toml_err("\n[pg]\nenabled = true\n");
    assert!(
        e.starts_with("policy /x/p.toml line 2: unknown key \"pg\""),
        "{e}"
    );
    let e = toml_err("disable = 1\n");
    assert!(
        e.contains("line 1: key \"disable\" must be true or false"),
        "{e}"
    );
    let e = toml_err("[postgres]\nenabled = \"yes\"\n");
    assert!(
        e.contains("line 2: key \"enabled\" must be true or false"),
        "{e}"
    );
    let e = toml_err("postgres = 3\n");
    assert!(
        e.contains("line 1: key \"postgres\" must be a table"),
        "{e}"
    );
    let e = toml_err("[postgres]\ntemplate = 5\n");
    assert!(
        e.contains("line 2: key \"template\" must be a string"),
        "{e}"
    );
    let e = toml_err("[postgres]\ntemplate = 1979-05-27\n");
    assert!(
        e.contains("line 2: key \"template\" must be a string"),
        "{e}"
    );
    // Syntax errors carry toml's own message and a line.
    let e = toml_err("[postgres]\nenabled = \n");
    assert!(e.contains("line 2:"), "{e}");
    let e = toml_err("[postgres]\nenabled = true\nenabled = false\n");
    assert!(e.contains("line 3:"), "{e}");
}

#[test]
fn toml_errors_in_dotted_and_nested_keys() {
    let e = toml_err("disable = false\npostgres.tempalte = \"x\"\n");
    assert!(
        e.contains("line 2: unknown key \"tempalte\" in [postgres]"),
        "{e}"
    );
    let e = toml_err("[mysql]\nenabled = true\n\n[mysql.extra]\nx = 1\n");
    assert!(
        e.contains("line 4: unknown key \"extra\" in [mysql]"),
        "{e}"
    );
    let e = toml_err("[postgres]\nskip = [\"a\",\n  \"b\",\n  3]\n");
    assert!(
        e.contains("line 2: key \"skip\" must be a list of strings"),
        "{e}"
    );
    let e = toml_err("mysql = { template = \"{worker}\" }\n");
    assert!(
        e.contains("line 1: key \"template\": template must contain {db}"),
        "{e}"
    );
    let e = toml_err("[postgres]\nreroute = [[\"a\"]]\n");
    assert!(e.contains("must be a list of strings"), "{e}");
}

#[test]
fn template_validation() {
    let bad = [
        ("x_{worker}", "{db}"),
        ("{db}_{db}", "exactly once"),
        ("{db}_{host}", "unknown placeholder {host}"),
        ("{db}_{worker:2}", "unknown placeholder"),
        ("{db}_{worker:0}", "unknown placeholder"),
        ("{db}_{worker", "without a closing"),
        ("{db}_}", "without an opening"),
        ("{db}'", "quotes"),
        ("{db}\\\"", "quotes"),
        ("{db}\\\\", "backslashes"),
        ("{db}\\u0000", "control"),
        ("{db}\\n", "control"),
        ("", "{db}"),
        // Issue 12: every worker would share one database.
        ("{db}", "{worker}"),
        ("{db}_{worker_count}", "{worker}"),
        ("x_{db}_y", "{worker}"),
    ];
    for (t, want) in bad {
        let e = toml_err(&format!("\n[postgres]\ntemplate = \"{t}\"\n"));
        assert!(
            e.contains("line 3: key \"template\"") && e.contains(want),
            "{t}: {e}"
        );
    }
    for good in [
        "{db}_{worker}",
        "t_{db}_{worker:05}",
        "{db}{worker_count}x{worker}",
        "{worker:02}{db}",
    ] {
        assert!(
            Policy::from_toml(&format!("[mysql]\ntemplate = \"{good}\""), "p").is_ok(),
            "{good}"
        );
    }
}

proptest! {
    #[test]
    fn decide_never_panics(name in "\\PC{0,80}", num in 0u32..2000, text in "\\PC{0,60}") {
        let p = Policy::default();
        let _ = p.decide(Engine::Postgres, &name, &Worker { num, count: 4 });
        let _ = p.decide(Engine::Mysql, &name, &Worker { num, count: 4 });
        let _ = Policy::from_toml(&text, "p");
        let _ = Policy::default().with_env(&|_: &str| Some(text.clone()));
        let _ = worker_from_env(&|_: &str| Some(text.clone()));
    }

    #[test]
    fn reroute_is_idempotent(name in "[a-z_][a-z0-9_]{0,40}", num in 0u32..500) {
        let p = Policy::default();
        let w = Worker { num, count: 4 };
        if let Decision::Reroute(new) = p.decide(Engine::Postgres, &name, &w).unwrap() {
            prop_assert!(new.starts_with(&name));
            prop_assert_eq!(p.decide(Engine::Postgres, &new, &w).unwrap(), Decision::Keep(Keep::AlreadyRerouted));
        }
    }

    #[test]
    fn glob_star_matches_like_regex(pat in "[ab*?]{0,8}", name in "[ab]{0,10}") {
        let re = format!("^{}$", pat.replace('*', ".*").replace('?', "."));
        let want = regex_lite_match(&re, &name);
        prop_assert_eq!(Glob::new(&pat).matches(&name.chars().collect::<Vec<_>>()), want);
    }
}

/// A tiny backtracking matcher for `^…$` patterns over `a`, `b`, `.` and `.*` (test oracle).
fn regex_lite_match(re: &str, s: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p {
            [] => s.is_empty(),
            ['.', '*', rest @ ..] => (0..=s.len()).any(|i| go(rest, &s[i..])),
            [c, rest @ ..] => match s.split_first() {
                Some((h, t)) => (*c == '.' || c == h) && go(rest, t),
                None => false,
            },
        }
    }
    let p: Vec<char> = re
        .trim_start_matches('^')
        .trim_end_matches('$')
        .chars()
        .collect();
    let s: Vec<char> = s.chars().collect();
    go(&p, &s)
}
