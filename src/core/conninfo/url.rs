//! Generic URLs (the Python side).

use super::rewrite::internal;
use super::*;

pub(super) struct UrlDb<'a> {
    /// The effective database setting (decoded) and its raw span.
    db: Option<(Cow<'a, [u8]>, Range<usize>)>,
    path_slot: Option<usize>,
    host_end: usize,
}

pub(super) fn is_pg_scheme(scheme: &[u8]) -> bool {
    let s = scheme.to_ascii_lowercase();
    s == b"postgresql"
        || s == b"postgres"
        || s.starts_with(b"postgresql+")
        || s.starts_with(b"postgres+")
}

impl<'a> UrlDb<'a> {
    fn parse(url: &'a [u8]) -> Result<UrlDb<'a>, RewriteError> {
        no_nul(url, "the URL")?;
        if uri_prefix_length(url) != 0 {
            let mut f: Finals<'a, Loc> = Finals::default();
            let shape = scan(url, false, &mut |t| f.take(t))?;
            let Shape::Uri {
                host_end,
                path_slot,
                ..
            } = shape
            else {
                return Err(internal("URL"));
            };
            return Ok(UrlDb {
                db: f.dbname.map(|(v, l)| (v, l.span)),
                path_slot,
                host_end,
            });
        }
        Self::parse_generic(url)
    }

    /// `scheme://[user[:password]@]host[:port][/database][?query]`, SQLAlchemy's reading: the
    /// userinfo ends at the first `@` (a user name has no `/` or `:`), the database is the whole
    /// path up to `?`; for PostgreSQL schemes `?dbname=` / `?database=` override it.
    fn parse_generic(url: &'a [u8]) -> Result<UrlDb<'a>, RewriteError> {
        let not_url = || syntax("not a URL (scheme://…)");
        let sep = url
            .windows(3)
            .position(|w| w == b"://")
            .ok_or_else(not_url)?;
        let scheme = sub(url, 0..sep);
        let scheme_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic)
            && scheme
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(not_url());
        }
        let pg = is_pg_scheme(scheme);
        let n = url.len();
        let a = sep + 3;
        let rest = sub(url, a..n);
        let mut h = a;
        if let Some(k) = rest.iter().position(|&c| c == b'@') {
            let cand = sub(rest, 0..k);
            let user_part = cand.split(|&c| c == b':').next().unwrap_or_default();
            if !user_part.contains(&b'/') {
                h = a + k + 1;
            }
        }
        let mut p = h;
        if at(url, p) == Some(b'[') {
            while at(url, p).is_some_and(|c| c != b']') {
                p += 1;
            }
        }
        while at(url, p).is_some_and(|c| c != b'/' && c != b'?') {
            p += 1;
        }
        let host_end = p;
        let mut db = None;
        let mut path_slot = None;
        if at(url, p) == Some(b'/') {
            p += 1;
            path_slot = Some(p);
            let d = p;
            while at(url, p).is_some_and(|c| c != b'?') {
                p += 1;
            }
            if p > d {
                db = Some((pct_decode(sub(url, d..p), d)?, d..p));
            }
        }
        if at(url, p) == Some(b'?') && pg {
            let mut q = p + 1;
            while q <= n {
                let end = (q..n).find(|&i| at(url, i) == Some(b'&')).unwrap_or(n);
                let part = sub(url, q..end);
                if let Some(eq) = part.iter().position(|&c| c == b'=') {
                    let key = pct_decode(sub(part, 0..eq), q).unwrap_or_default();
                    if &*key == b"dbname" || &*key == b"database" {
                        let vr = q + eq + 1..end;
                        db = Some((pct_decode(sub(url, vr.clone()), vr.start)?, vr));
                    }
                }
                q = end + 1;
            }
        }
        Ok(UrlDb {
            db,
            path_slot,
            host_end,
        })
    }
}

/// The database a URL names (percent-decoded), `None` when it names none. Any `scheme://`:
/// `postgresql://` / `postgres://` exactly as libpq reads them (multi-host, `[::1]`, `?dbname=`),
/// others (`postgresql+psycopg2://`, `mysql://`, `mysql+pymysql://`) as SQLAlchemy does.
pub fn url_get_db(url: &[u8]) -> Result<Option<String>, RewriteError> {
    let u = UrlDb::parse(url)?;
    match u.db {
        Some((v, _)) if !v.is_empty() => String::from_utf8(v.into_owned())
            .map(Some)
            .map_err(|_| syntax("the database name in the URL is not valid UTF-8")),
        _ => Ok(None),
    }
}

/// The URL naming `new_db` instead (percent-encoded as needed), every other byte unchanged. A URL
/// without a database gets a path.
pub fn url_set_db(url: &[u8], new_db: &str) -> Result<Vec<u8>, RewriteError> {
    no_nul(new_db.as_bytes(), "the database name")?;
    let u = UrlDb::parse(url)?;
    let enc = pct_encode(new_db.as_bytes());
    Ok(match (u.db, u.path_slot) {
        (Some((_, span)), _) => splice(url, span, &enc),
        (None, Some(p)) => splice(url, p..p, &enc),
        (None, None) => {
            let mut with = b"/".to_vec();
            with.extend(enc);
            splice(url, u.host_end..u.host_end, &with)
        }
    })
}
