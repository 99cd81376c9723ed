//! Tests of the `…_gwN` rule: names pytest-django (and xdist suites) already make per worker.

use super::*;
use proptest::prelude::*;

fn decide(p: &Policy, e: Engine, name: &str, num: u32) -> Decision {
    p.decide(e, name, &Worker { num, count: 8 }).unwrap()
}

fn policies() -> Vec<Policy> {
    vec![
        Policy::default(),
        Policy::from_toml("[postgres]\ntemplate = \"t_{db}_w{worker}\"\n", "p").unwrap(),
        Policy::from_toml("[mysql]\ntemplate = \"{worker:03}_{db}\"\n", "p").unwrap(),
        Policy::from_toml(
            "[postgres]\nreroute = [\"test_*\"]\n[mysql]\nreroute = [\"*\"]",
            "p",
        )
        .unwrap(),
    ]
}

#[test]
fn pytest_django_worker_names_are_kept_on_every_worker() {
    for p in policies() {
        for e in [Engine::Postgres, Engine::Mysql] {
            for name in [
                "test_app_gw0",
                "test_app_gw3",
                "test_app_gw12",
                "custom_gw7",
                "a_gw0",
            ] {
                for num in [0, 3, 7] {
                    assert_eq!(
                        decide(&p, e, name, num),
                        Decision::Keep(Keep::AlreadyRerouted),
                        "{name} on worker {num}"
                    );
                }
            }
        }
    }
}

#[test]
fn names_that_only_look_alike_are_rerouted() {
    let p = Policy::default();
    for name in [
        "_gw1", "gw1", "app_gw", "app_gwx", "app_gw1x", "app_gw_1", "app-gw1", "app_GW1",
    ] {
        assert_eq!(
            decide(&p, Engine::Postgres, name, 2),
            Decision::Reroute(format!("{name}_jw02")),
            "{name}"
        );
    }
    // The template's own shape and `_jwNN` still count as before.
    assert_eq!(
        decide(&p, Engine::Mysql, "app_jw02", 2),
        Decision::Keep(Keep::AlreadyRerouted)
    );
}

#[test]
fn gw_rule_comes_after_disabled_and_system() {
    let p = Policy::default()
        .with_env(&|k: &str| (k == "DAGZ_DISABLE").then(|| "pg".to_string()))
        .unwrap();
    assert_eq!(
        decide(&p, Engine::Postgres, "test_app_gw1", 1),
        Decision::Keep(Keep::EngineDisabled)
    );
    assert_eq!(
        decide(&p, Engine::Mysql, "test_app_gw1", 1),
        Decision::Keep(Keep::AlreadyRerouted)
    );
}

proptest! {
    /// A child of any worker (whatever its number, template or allow-list) never re-suffixes a
    /// `…_gwN` name.
    #[test]
    fn gw_names_are_never_rerouted(
        base in "[a-z_][a-z0-9_]{0,40}",
        gw in 0u32..1000,
        num in 0u32..1000,
        which in 0usize..4,
    ) {
        let p = &policies()[which];
        let name = format!("{base}_gw{gw}");
        for e in [Engine::Postgres, Engine::Mysql] {
            prop_assert_eq!(decide(p, e, &name, num), Decision::Keep(Keep::AlreadyRerouted));
        }
    }

    /// Names without the `_gw<digits>` ending are decided as before the rule: a reroute renders
    /// the template, and what it renders is kept on the next decision.
    #[test]
    fn other_names_unaffected(base in "[a-z][a-z0-9]{0,20}", num in 0u32..200) {
        let p = Policy::default();
        let new = format!("{base}_jw{num:02}");
        prop_assert_eq!(decide(&p, Engine::Mysql, &base, num), Decision::Reroute(new.clone()));
        prop_assert_eq!(decide(&p, Engine::Mysql, &new, num), Decision::Keep(Keep::AlreadyRerouted));
    }

    /// The rule is exactly "ends with `_gw` and digits, after something".
    #[test]
    fn rule_matches_its_definition(name in "[a-z_gw0-9]{0,12}") {
        let digits = name.chars().rev().take_while(char::is_ascii_digit).count();
        let head = &name[..name.len() - digits];
        let want = digits > 0 && head.len() > 3 && head.ends_with("_gw");
        prop_assert_eq!(has_gw_suffix(&name), want);
    }
}
