//! `DAGZ_RENAME`: per-database overrides of the rerouted name, for a worker database that could
//! not be rebuilt (a blocker dagz may not remove: a MariaDB prepared XA transaction, a
//! PostgreSQL replication slot, …). The worker's Python side provisions a fresh copy and sets
//! `DAGZ_RENAME=pg:myapp=myapp_jw03_f1,mysql:audit=audit_jw03_f1` in its environment, so its
//! children (which route by the policy, without the decision callback) land there too.
//!
//! Entries are separated by `,`; each is `[pg:|mysql:]base=fresh` (no engine: both engines).
//! A connect the policy reroutes from `base` goes to `fresh` instead of the template's name; a
//! connect to `fresh` itself is kept (it is a worker database already). A malformed value is an
//! error: the connect is refused rather than routed by a half-read override.

use super::policy::Engine;

/// The variable's name.
pub const ENV: &str = "DAGZ_RENAME";

/// One entry of the variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// `None`: the entry applies to both engines.
    pub engine: Option<Engine>,
    pub base: &'a str,
    pub fresh: &'a str,
}

/// What the variable says about one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied<'a> {
    /// The name is an override's fresh name: keep it.
    Fresh,
    /// The name is an override's base: reroute it here when the policy reroutes it.
    Rename(&'a str),
}

fn engine_of(label: &str) -> Option<Engine> {
    match label {
        "pg" | "postgres" | "postgresql" => Some(Engine::Postgres),
        "mysql" | "mariadb" => Some(Engine::Mysql),
        _ => None,
    }
}

/// Parses one entry (`[engine:]base=fresh`).
pub fn parse_entry(item: &str) -> Result<Entry<'_>, String> {
    let bad = |why: &str| format!("{ENV} entry {item:?} {why} (expected [pg:|mysql:]base=fresh)");
    let (base, fresh) = item.split_once('=').ok_or_else(|| bad("has no \"=\""))?;
    let (engine, base) = match base.split_once(':') {
        Some((label, rest)) => (
            Some(engine_of(label).ok_or_else(|| bad("names no engine"))?),
            rest,
        ),
        None => (None, base),
    };
    if base.is_empty() || fresh.is_empty() || fresh.contains('=') {
        return Err(bad("is incomplete"));
    }
    if base == fresh {
        return Err(bad("renames a database to itself"));
    }
    for e in [Engine::Postgres, Engine::Mysql] {
        if engine.is_none_or(|x| x == e) && e.name_len(fresh) > e.max_name_len() {
            return Err(bad(&format!(
                "names a database over the {} limit of {} {}",
                e.label(),
                e.max_name_len(),
                e.len_unit()
            )));
        }
    }
    Ok(Entry {
        engine,
        base,
        fresh,
    })
}

/// Every entry of `value` (empty items are skipped), or the first error.
pub fn entries(value: &str) -> Result<Vec<Entry<'_>>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(parse_entry)
        .collect()
}

/// What `value` (the variable's text) says about `name` of `engine`: `None` when no entry of
/// that engine names it. A fresh name wins over a base of the same text.
pub fn apply<'a>(
    value: &'a str,
    engine: Engine,
    name: &str,
) -> Result<Option<Applied<'a>>, String> {
    let mut found = None;
    for entry in entries(value)? {
        if entry.engine.is_some_and(|e| e != engine) {
            continue;
        }
        if entry.fresh == name {
            return Ok(Some(Applied::Fresh));
        }
        if entry.base == name && found.is_none() {
            found = Some(Applied::Rename(entry.fresh));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn renames_a_base_of_its_engine_only() {
        let v = "pg:myapp=myapp_jw03_f1, mysql:audit=audit_jw03_f2";
        let pg = Engine::Postgres;
        assert_eq!(
            apply(v, pg, "myapp"),
            Ok(Some(Applied::Rename("myapp_jw03_f1")))
        );
        assert_eq!(apply(v, Engine::Mysql, "myapp"), Ok(None));
        assert_eq!(
            apply(v, Engine::Mysql, "audit"),
            Ok(Some(Applied::Rename("audit_jw03_f2")))
        );
        assert_eq!(apply(v, pg, "myapp_jw03_f1"), Ok(Some(Applied::Fresh)));
        assert_eq!(apply(v, pg, "other"), Ok(None));
        assert_eq!(apply("", pg, "myapp"), Ok(None));
        assert_eq!(
            apply("a=b", Engine::Mysql, "a"),
            Ok(Some(Applied::Rename("b")))
        );
    }

    #[test]
    fn malformed_values_are_errors() {
        for v in ["a", "=b", "a=", "x:a=b", "a=a", "a=b=c", "pg:=b"] {
            assert!(apply(v, Engine::Postgres, "a").is_err(), "{v}");
        }
        let long = format!("pg:a={}", "é".repeat(32)); // 64 bytes, 32 characters
        assert!(apply(&long, Engine::Postgres, "a")
            .unwrap_err()
            .contains("63 bytes"));
        let my = format!("mysql:a={}", "é".repeat(32));
        assert_eq!(
            apply(&my, Engine::Mysql, "a").map(|a| a.is_some()),
            Ok(true)
        );
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9_]{0,20}"
    }

    proptest! {
        /// A rendered entry reads back as itself, and a list of them says, for every name,
        /// what the first entry naming it says.
        #[test]
        fn entries_round_trip(pairs in proptest::collection::vec((name(), name()), 0..5)) {
            let pairs: Vec<_> = pairs.into_iter().filter(|(b, f)| b != f).collect();
            let value = pairs.iter().map(|(b, f)| format!("pg:{b}={f}")).collect::<Vec<_>>().join(",");
            let parsed = entries(&value).unwrap();
            prop_assert_eq!(parsed.len(), pairs.len());
            for (b, f) in &pairs {
                let got = apply(&value, Engine::Postgres, b).unwrap();
                let fresh = pairs.iter().any(|(_, f2)| f2 == b);
                if fresh {
                    prop_assert_eq!(got, Some(Applied::Fresh));
                } else {
                    let first = pairs.iter().find(|(b2, _)| b2 == b).map(|(_, f2)| f2.as_str());
                    prop_assert_eq!(got, first.map(Applied::Rename));
                }
                prop_assert_eq!(apply(&value, Engine::Postgres, f).unwrap(), Some(Applied::Fresh));
                prop_assert_eq!(apply(&value, Engine::Mysql, b).unwrap(), None);
            }
        }

        /// Any text either parses or is an error; it never panics.
        #[test]
        fn any_text_is_decided(v in ".{0,40}", n in ".{0,10}") {
            let _ = apply(&v, Engine::Mysql, &n);
        }
    }
}
