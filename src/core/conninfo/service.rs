//! The connection service file (`pg_service.conf`), as libpq's `parseServiceInfo` reads it.

use super::*;

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ServiceVals {
    pub(super) dbname: Option<Vec<u8>>,
    pub(super) user: Option<Vec<u8>>,
}

/// libpq's `parseServiceFile`: `Ok(None)` when the group is not in this file.
pub(super) fn parse_service_file(
    text: &str,
    service: &[u8],
    path: &str,
) -> Result<Option<ServiceVals>, RewriteError> {
    let mut found = false;
    let mut vals = ServiceVals::default();
    let bytes = text.as_bytes();
    let mut linenr = 0;
    for raw in bytes.split_inclusive(|&c| c == b'\n') {
        linenr += 1;
        // fgets into a 1024-byte buffer: a line of 1023 bytes or more (newline included) is an error.
        if raw.len() >= 1023 {
            return Err(syntax(format!(
                "line {linenr} too long in service file \"{path}\""
            )));
        }
        let mut line = raw;
        while let [rest @ .., last] = line {
            if !is_space(*last) {
                break;
            }
            line = rest;
        }
        while let [first, rest @ ..] = line {
            if !is_space(*first) {
                break;
            }
            line = rest;
        }
        if line.is_empty() || line.first() == Some(&b'#') {
            continue;
        }
        if line.first() == Some(&b'[') {
            if found {
                return Ok(Some(vals));
            }
            let name = sub(line, 1..line.len());
            found = name.starts_with(service) && at(name, service.len()) == Some(b']');
            continue;
        }
        if !found {
            continue;
        }
        if line.starts_with(b"ldap") {
            return Err(syntax(format!(
                "LDAP lookups in service file \"{path}\" (line {linenr}) are not supported by dagz"
            )));
        }
        let Some(eq) = line.iter().position(|&c| c == b'=') else {
            return Err(syntax(format!(
                "syntax error in service file \"{path}\", line {linenr}"
            )));
        };
        let key = sub(line, 0..eq);
        let val = sub(line, eq + 1..line.len());
        match key {
            b"service" => {
                return Err(syntax(format!(
                    "nested service specifications not supported in service file \"{path}\", line {linenr}"
                )))
            }
            // The first setting in the group wins (libpq never overrides a value already set).
            b"dbname" if vals.dbname.is_none() => vals.dbname = Some(val.to_vec()),
            b"user" if vals.user.is_none() => vals.user = Some(val.to_vec()),
            _ => {}
        }
    }
    Ok(found.then_some(vals))
}

/// libpq's `parseServiceInfo`: the service's settings, `None` when no service is named.
pub(super) fn service_values<L>(
    f: &Finals<'_, L>,
    env: &dyn PgEnv,
) -> Result<Option<ServiceVals>, RewriteError> {
    let name: Vec<u8> = match &f.service {
        Some(s) => s.to_vec(),
        None => match env.var("PGSERVICE") {
            Some(v) => v.into_bytes(),
            None => return Ok(None),
        },
    };
    let first = match &f.servicefile {
        Some(sf) => Some(
            std::str::from_utf8(sf)
                .map_err(|_| syntax("the servicefile path is not valid UTF-8"))?
                .to_owned(),
        ),
        None => match env.var("PGSERVICEFILE") {
            Some(v) => Some(v),
            None => env
                .var("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| format!("{h}/.pg_service.conf")),
        },
    };
    if let Some(path) = first {
        if let Some(text) = env.read_file(&path) {
            if let Some(v) = parse_service_file(&text, &name, &path)? {
                return Ok(Some(v));
            }
        }
    }
    let dir = env
        .var("PGSYSCONFDIR")
        .unwrap_or_else(|| "/etc/postgresql-common".to_owned());
    let path = format!("{dir}/pg_service.conf");
    if let Some(text) = env.read_file(&path) {
        if let Some(v) = parse_service_file(&text, &name, &path)? {
            return Ok(Some(v));
        }
    }
    Err(syntax(format!(
        "definition of service \"{}\" not found",
        lossy(&name)
    )))
}
