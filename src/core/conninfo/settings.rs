//! The explicit settings of a connection (host, port, user, password, sslmode, …) as libpq
//! would apply them, for the decision callback that needs to connect to the same server (auto
//! mode builds a worker database from its base over a connection of its own). Values are never
//! logged: they go to the callback only.

use super::*;

/// Settings in the order they were first given; a later value of a keyword replaces the earlier
/// one in place (libpq's "last one wins").
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settings(Vec<(Vec<u8>, Vec<u8>)>);

impl Settings {
    /// Sets `key` to `value` (an empty value is an explicit empty setting).
    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_vec(),
            None => self.0.push((key.to_vec(), value.to_vec())),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// The settings as the callback receives them: `key\0value\0` for each (no `dbname`: the
    /// callback gets the effective name on its own; no key or value holding a NUL).
    pub fn block(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            if k.as_slice() == b"dbname" || k.contains(&0) || v.contains(&0) {
                continue;
            }
            out.extend_from_slice(k);
            out.push(0);
            out.extend_from_slice(v);
            out.push(0);
        }
        out
    }

    fn take_string(&mut self, s: &[u8]) -> Result<(), RewriteError> {
        let mut toks = Vec::new();
        scan(s, true, &mut |t| toks.push(t))?;
        for t in toks {
            self.set(&t.key, &t.val);
        }
        Ok(())
    }
}

/// The settings of a `key=value` conninfo or a `postgresql://` URI (hosts and ports of a URI
/// joined with `,`, as libpq stores them).
pub fn settings_of_conninfo(s: &[u8]) -> Result<Settings, RewriteError> {
    let mut out = Settings::default();
    out.take_string(s)?;
    Ok(out)
}

/// The settings of `PQconnectdbParams` keyword/value arrays: NULL and empty values skipped, the
/// first `dbname` expanded as a connection string with `expand_dbname`.
pub fn settings_of_params(
    params: &[(&[u8], Option<&[u8]>)],
    expand_dbname: bool,
) -> Result<Settings, RewriteError> {
    let mut out = Settings::default();
    let first_db = params
        .iter()
        .position(|(k, v)| *k == b"dbname" && v.is_some());
    for (i, (k, v)) in params.iter().enumerate() {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            continue;
        };
        if expand_dbname && Some(i) == first_db && recognized_connection_string(v) {
            out.take_string(v)?;
        } else {
            out.set(k, v);
        }
    }
    Ok(out)
}

/// The settings of `PQsetdbLogin(host, port, options, tty, dbName, login, pwd)`: `dbName` may be
/// a connection string, whose settings the other non-empty arguments override.
pub fn settings_of_setdb(args: [Option<&[u8]>; 6]) -> Result<Settings, RewriteError> {
    let [host, port, options, db, login, pwd] = args;
    let mut out = Settings::default();
    if let Some(d) = db.filter(|d| recognized_connection_string(d)) {
        out.take_string(d)?;
    }
    for (key, v) in [
        (&b"host"[..], host),
        (b"port", port),
        (b"options", options),
        (b"user", login),
        (b"password", pwd),
    ] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            out.set(key, v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &Settings) -> Vec<(String, String)> {
        let block = s.block();
        let parts: Vec<&[u8]> = block.split(|&b| b == 0).collect();
        parts
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| (lossy(c[0]).into_owned(), lossy(c[1]).into_owned()))
            .collect()
    }

    fn kv(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn conninfo_last_value_wins_and_dbname_is_left_out() {
        let s = settings_of_conninfo(
            b"host=h1 port=5433 dbname=app user=u password='p w' host=h2 sslmode=require",
        )
        .unwrap();
        assert_eq!(
            pairs(&s),
            kv(&[
                ("host", "h2"),
                ("port", "5433"),
                ("user", "u"),
                ("password", "p w"),
                ("sslmode", "require")
            ])
        );
        assert_eq!(s.get(b"dbname"), Some(&b"app"[..]));
    }

    #[test]
    fn uri_hosts_ports_userinfo_and_query() {
        let s = settings_of_conninfo(
            b"postgresql://us%40r:s3cr%2Ft@h1:5432,h2:5433/app?sslmode=verify-full&sslrootcert=/c.pem",
        )
        .unwrap();
        assert_eq!(
            pairs(&s),
            kv(&[
                ("user", "us@r"),
                ("password", "s3cr/t"),
                ("host", "h1,h2"),
                ("port", "5432,5433"),
                ("sslmode", "verify-full"),
                ("sslrootcert", "/c.pem")
            ])
        );
    }

    #[test]
    fn params_skip_null_and_empty_and_expand_the_first_dbname() {
        let p: Vec<(&[u8], Option<&[u8]>)> = vec![
            (b"host", Some(b"h0")),
            (b"port", None),
            (b"user", Some(b"")),
            (b"dbname", Some(b"host=h1 user=u1 dbname=app")),
            (b"password", Some(b"pw")),
        ];
        let s = settings_of_params(&p, true).unwrap();
        assert_eq!(
            pairs(&s),
            kv(&[("host", "h1"), ("user", "u1"), ("password", "pw")])
        );
        let s = settings_of_params(&p, false).unwrap();
        assert_eq!(pairs(&s), kv(&[("host", "h0"), ("password", "pw")]));
    }

    #[test]
    fn setdb_arguments_override_a_conninfo_db_name() {
        let s = settings_of_setdb([
            Some(b"h"),
            Some(b"5432"),
            None,
            Some(b"dbname=app sslmode=disable host=x"),
            Some(b"u"),
            Some(b""),
        ])
        .unwrap();
        assert_eq!(
            pairs(&s),
            kv(&[
                ("sslmode", "disable"),
                ("host", "h"),
                ("port", "5432"),
                ("user", "u")
            ])
        );
    }

    #[test]
    fn bad_strings_are_errors_and_nul_values_are_left_out() {
        assert!(settings_of_conninfo(b"host='unterminated").is_err());
        let mut s = Settings::default();
        s.set(b"host", b"a\0b");
        s.set(b"port", b"1");
        assert_eq!(pairs(&s), kv(&[("port", "1")]));
    }
}
