//! Writing the new name: conninfo strings, keyword arrays, `PQsetdbLogin`.

use super::*;

pub(super) fn encode_for(kind: Kind, v: &[u8]) -> Vec<u8> {
    match kind {
        Kind::Conn { quoted } => conn_value(v, quoted),
        Kind::UriUser
        | Kind::UriPassword
        | Kind::UriHost
        | Kind::UriPort
        | Kind::UriPath
        | Kind::UriQuery => pct_encode(v),
    }
}

/// `s` with its dbname setting at `loc` replaced by `new`, or (no setting) one appended.
pub(super) fn write_db(s: &[u8], shape: &Shape, loc: Option<&Loc>, new: &str) -> Vec<u8> {
    let v = new.as_bytes();
    if let Some(l) = loc {
        return splice(s, l.span.clone(), &encode_for(l.kind, v));
    }
    match shape {
        Shape::Conn { append_safe } => {
            let mut item = b"dbname=".to_vec();
            item.extend(conn_value(v, false));
            if s.is_empty() {
                item
            } else if *append_safe {
                let mut out = Vec::with_capacity(s.len() + item.len() + 1);
                out.extend_from_slice(s);
                out.push(b' ');
                out.extend(item);
                out
            } else {
                // The last value runs to the end and would swallow an appended setting.
                item.push(b' ');
                item.extend_from_slice(s);
                item
            }
        }
        Shape::Uri { query_start, .. } => {
            let mut out = Vec::with_capacity(s.len() + v.len() + 9);
            out.extend_from_slice(s);
            match query_start {
                None => out.push(b'?'),
                Some(q) if *q < s.len() && s.last() != Some(&b'&') => out.push(b'&'),
                Some(_) => {}
            }
            out.extend_from_slice(b"dbname=");
            out.extend(pct_encode(v));
            out
        }
    }
}

pub(super) fn explicit_dbname(s: &[u8]) -> Result<Option<Vec<u8>>, RewriteError> {
    let mut f: Finals<'_, Loc> = Finals::default();
    scan(s, false, &mut |t| f.take(t))?;
    Ok(f.dbname.map(|(v, _)| v.into_owned()))
}

pub(super) fn internal(what: &str) -> RewriteError {
    syntax(format!(
        "internal error: the rewritten {what} does not name the new database"
    ))
}

/// Rewrite one connection string (`login`: `PQsetdbLogin`'s, overriding the user fallback).
pub(super) fn rewrite_string<'a>(
    s: &'a [u8],
    login: Option<&'a [u8]>,
    env: &dyn PgEnv,
    decide: &mut Decide<'_>,
) -> Result<Option<Vec<u8>>, RewriteError> {
    let mut f: Finals<'a, Loc> = Finals::default();
    let shape = scan(s, false, &mut |t| f.take(t))?;
    let name = effective(&f, login, env)?;
    let Some(new) = run_decide(&name, decide)? else {
        return Ok(None);
    };
    let out = write_db(s, &shape, f.dbname.as_ref().map(|(_, l)| l), &new);
    if explicit_dbname(&out)?.as_deref() != Some(new.as_bytes()) {
        return Err(internal("connection string"));
    }
    Ok(Some(out))
}

/// `PQconnectdb` / `PQconnectStart` input: a `key=value` conninfo or a `postgresql://` /
/// `postgres://` URI. `Ok(None)`: leave it unchanged; `Ok(Some(s))`: use `s` instead.
pub fn rewrite_conninfo(
    s: &[u8],
    env: &dyn PgEnv,
    decide: &mut Decide<'_>,
) -> Result<Option<Vec<u8>>, RewriteError> {
    no_nul(s, "the connection string")?;
    rewrite_string(s, None, env, decide)
}

/// Where the dbname of a keyword array comes from.
#[derive(Clone, Debug)]
pub(super) enum PLoc {
    /// A plain array value.
    Entry(usize),
    /// Inside the expanded connection string (the first `dbname` value).
    InS(Loc),
}

pub(super) struct ParamsView<'a> {
    finals: Finals<'a, PLoc>,
    /// The first `dbname` entry with a non-NULL value.
    first_db: Option<usize>,
    /// That entry, when it is expanded as a connection string, and the string's shape.
    expanded: Option<(usize, Shape)>,
}

/// libpq's `conninfo_array_parse` (without defaults), for the settings that matter here.
pub(super) fn params_view<'a>(
    params: &[(&'a [u8], Option<&'a [u8]>)],
    expand_dbname: bool,
) -> Result<ParamsView<'a>, RewriteError> {
    let first_db = params
        .iter()
        .position(|(k, v)| *k == b"dbname" && v.is_some());
    let mut inner: Finals<'a, Loc> = Finals::default();
    let mut expanded = None;
    if expand_dbname {
        if let Some(i) = first_db {
            let v = params.get(i).and_then(|p| p.1).unwrap_or_default();
            if recognized_connection_string(v) {
                let shape = scan(v, false, &mut |t| inner.take(t))?;
                expanded = Some((i, shape));
            }
        }
    }
    let mut f: Finals<'a, PLoc> = Finals::default();
    for (i, (k, v)) in params.iter().enumerate() {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            continue;
        };
        if expanded.as_ref().is_some_and(|(e, _)| *e == i) {
            // Every setting of the expanded string overrides what came before.
            if let Some((v, l)) = &inner.dbname {
                f.dbname = Some((v.clone(), PLoc::InS(l.clone())));
            }
            if let Some(u) = &inner.user {
                f.user = Some(u.clone());
            }
            if let Some(s) = &inner.service {
                f.service = Some(s.clone());
            }
            if let Some(s) = &inner.servicefile {
                f.servicefile = Some(s.clone());
            }
            continue;
        }
        let v = Cow::Borrowed(v);
        match *k {
            b"dbname" => f.dbname = Some((v, PLoc::Entry(i))),
            b"user" => f.user = Some(v),
            b"service" => f.service = Some(v),
            b"servicefile" => f.servicefile = Some(v),
            _ => {}
        }
    }
    Ok(ParamsView {
        finals: f,
        first_db,
        expanded,
    })
}

/// `PQconnectdbParams` / `PQconnectStartParams`: the keyword and value arrays (values may be
/// NULL). Returns the whole new list when anything changes: the dbname value replaced (inside the
/// expanded connection string when it comes from there), or a `dbname` entry appended when the
/// name came from a fallback. A replaced or appended value that libpq would expand is written as
/// `dbname='…'`.
pub fn rewrite_params(
    params: &[(&[u8], Option<&[u8]>)],
    expand_dbname: bool,
    env: &dyn PgEnv,
    decide: &mut Decide<'_>,
) -> Result<Option<ParamList>, RewriteError> {
    for (k, v) in params {
        no_nul(k, "a keyword")?;
        if let Some(v) = v {
            no_nul(v, "a value")?;
        }
    }
    let view = params_view(params, expand_dbname)?;
    let name = effective(&view.finals, None, env)?;
    let Some(new) = run_decide(&name, decide)? else {
        return Ok(None);
    };
    let mut out: ParamList = params
        .iter()
        .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
        .collect();
    match view.finals.dbname.as_ref().map(|(_, l)| l) {
        Some(PLoc::Entry(i)) => {
            let val = if expand_dbname && view.first_db == Some(*i) {
                literal_dbname(&new)
            } else {
                new.as_bytes().to_vec()
            };
            if let Some(e) = out.get_mut(*i) {
                e.1 = Some(val);
            }
        }
        Some(PLoc::InS(loc)) => {
            let Some((i, shape)) = &view.expanded else {
                return Err(internal("parameter list"));
            };
            let s = params.get(*i).and_then(|p| p.1).unwrap_or_default();
            let new_s = write_db(s, shape, Some(loc), &new);
            if let Some(e) = out.get_mut(*i) {
                e.1 = Some(new_s);
            }
        }
        None => {
            let val = if expand_dbname && view.first_db.is_none() {
                literal_dbname(&new)
            } else {
                new.as_bytes().to_vec()
            };
            out.push((b"dbname".to_vec(), Some(val)));
        }
    }
    let borrowed: Vec<(&[u8], Option<&[u8]>)> = out
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_deref()))
        .collect();
    let check = params_view(&borrowed, expand_dbname)?;
    if check.finals.dbname.as_ref().map(|(v, _)| &**v) != Some(new.as_bytes()) {
        return Err(internal("parameter list"));
    }
    Ok(Some(out))
}

/// `PQsetdbLogin`: the new `dbName` argument. `db_name` may itself be a conninfo or URI (then the
/// name inside it is rewritten); `login` overrides the user name used as the fallback database.
/// When the name comes from a fallback the result names it explicitly.
pub fn rewrite_setdb(
    db_name: Option<&[u8]>,
    login: Option<&[u8]>,
    env: &dyn PgEnv,
    decide: &mut Decide<'_>,
) -> Result<Option<Vec<u8>>, RewriteError> {
    if let Some(d) = db_name {
        no_nul(d, "dbName")?;
    }
    if let Some(l) = login {
        no_nul(l, "login")?;
    }
    let login = login.filter(|l| !l.is_empty());
    match db_name {
        Some(d) if recognized_connection_string(d) => rewrite_string(d, login, env, decide),
        Some(d) if !d.is_empty() => Ok(run_decide(d, decide)?.map(|new| literal_dbname(&new))),
        _ => {
            let f: Finals<'_, Loc> = Finals::default();
            let name = effective(&f, login, env)?;
            Ok(run_decide(&name, decide)?.map(|new| literal_dbname(&new)))
        }
    }
}
