//! Fuzzes the pure rewriters: `conninfo` (libpq conninfo strings, URIs, setdb, generic URLs,
//! redaction) and `mysql_sql` (`USE` statements). Properties checked, all promised by the modules'
//! own tests: no panic; a conninfo rewrite is idempotent (rewriting its output again is
//! `Ok(None)`); `redact` hides a simple `password=…`; `rewrite` output classifies back to the new
//! name.
#![no_main]

use dagz::conninfo::{
    parse_options, redact, rewrite_conninfo, rewrite_setdb, url_get_db, url_set_db, PgEnv,
};
use dagz::mysql_sql::{classify, rewrite, Class};
use libfuzzer_sys::fuzz_target;

/// A fixed fake environment; `service_file` (when set) is what every service file read returns.
struct Env {
    service_file: Option<String>,
}

impl PgEnv for Env {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "PGUSER" => Some("fallbackuser".into()),
            "PGSERVICE" if self.service_file.is_some() => Some("x".into()),
            _ => None,
        }
    }
    fn os_user(&self) -> Option<String> {
        Some("osuser".into())
    }
    fn read_file(&self, _path: &str) -> Option<String> {
        self.service_file.clone()
    }
}

fn jw03(x: &str) -> Result<Option<String>, String> {
    Ok((!x.ends_with("_jw03")).then(|| format!("{x}_jw03")))
}

fuzz_target!(|data: &[u8]| {
    let env = Env { service_file: None };

    // rewrite_conninfo: no panic, and idempotent.
    if let Ok(Some(out)) = rewrite_conninfo(data, &env, &mut jw03) {
        let again = rewrite_conninfo(&out, &env, &mut jw03);
        assert_eq!(
            again,
            Ok(None),
            "not idempotent: input {:?} -> {:?}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&out)
        );
    }
    // The same input as a service file (no-panic only).
    let svc_env = Env {
        service_file: Some(String::from_utf8_lossy(data).into_owned()),
    };
    let _ = rewrite_conninfo(b"host=h", &svc_env, &mut jw03);
    let _ = rewrite_setdb(None, None, &svc_env, &mut jw03);

    // rewrite_setdb, generic URLs, options, redact: no panic.
    let _ = rewrite_setdb(Some(data), None, &env, &mut jw03);
    let _ = rewrite_setdb(None, Some(data), &env, &mut jw03);
    let _ = url_get_db(data);
    if let Ok(out) = url_set_db(data, "new db_jw03") {
        let _ = url_get_db(&out);
    }
    let _ = parse_options(data);
    let _ = redact(data);
    let mut prefixed = b"postgresql://".to_vec();
    prefixed.extend_from_slice(data);
    let _ = rewrite_conninfo(&prefixed, &env, &mut jw03);
    let _ = url_set_db(&prefixed, "x");
    let _ = redact(&prefixed);

    // redact: a simple `password=SECRET…` never survives.
    let pw: String = data
        .iter()
        .filter(|b| b.is_ascii_alphanumeric())
        .take(16)
        .map(|&b| b as char)
        .collect();
    let secret = format!("SECRET{pw}");
    for s in [
        format!("password={secret}"),
        format!("host=h password={secret} dbname=app"),
        format!("postgresql://u:{secret}@h/app"),
    ] {
        let r = redact(s.as_bytes());
        assert!(!r.contains(&secret), "redact({s:?}) = {r:?}");
    }

    // classify / rewrite: the rewritten statement classifies back to the new name.
    if let Class::Use(u) = classify(data) {
        let new = format!("{}_jw03", u.name);
        let out = rewrite(data, &u, &new);
        let again = match classify(&out) {
            Class::Use(a) => Some(a.name),
            _ => None,
        };
        assert_eq!(
            again.as_deref(),
            Some(new.as_str()),
            "rewrite round trip: {:?} -> {:?}",
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&out)
        );
    }
});
