//! URIs: libpq's `conninfo_uri_parse_options` + `conninfo_uri_parse_params`.

use super::*;

/// libpq's `conninfo_uri_parse_options` + `conninfo_uri_parse_params`.
pub(super) fn scan_uri<'a>(
    s: &'a [u8],
    prefix: usize,
    want_hosts: bool,
    sink: &mut dyn FnMut(Tok<'a>),
) -> Result<Shape, RewriteError> {
    let p = scan_userinfo(s, prefix, sink)?;
    let host_end = scan_hosts(s, p, want_hosts, sink)?;
    let (path_slot, p) = scan_path(s, host_end, sink)?;
    let query_start = match at(s, p) {
        Some(_) => Some(scan_query(s, p + 1, sink)?),
        None => None,
    };
    Ok(Shape::Uri {
        host_end,
        path_slot,
        query_start,
    })
}

/// The userinfo (`user[:password]@`), found by looking ahead for `@` before the first `/`.
/// Returns where the host list starts.
fn scan_userinfo<'a>(
    s: &'a [u8],
    start: usize,
    sink: &mut dyn FnMut(Tok<'a>),
) -> Result<usize, RewriteError> {
    let mut p = start;
    // Look ahead for a userinfo designator before the first '/'.
    while at(s, p).is_some_and(|c| c != b'@' && c != b'/') {
        p += 1;
    }
    if at(s, p) == Some(b'@') {
        let at_sign = p;
        let mut q = start;
        while at(s, q).is_some_and(|c| c != b':' && c != b'@') {
            q += 1;
        }
        let user = sub(s, start..q);
        if !user.is_empty() {
            sink(Tok {
                key: Cow::Borrowed(b"user"),
                val: pct_decode(user, start)?,
                span: start..q,
                kind: Kind::UriUser,
            });
        }
        if at(s, q) == Some(b':') {
            let pw = sub(s, q + 1..at_sign);
            if !pw.is_empty() {
                sink(Tok {
                    key: Cow::Borrowed(b"password"),
                    val: pct_decode(pw, q + 1)?,
                    span: q + 1..at_sign,
                    kind: Kind::UriPassword,
                });
            }
        }
        Ok(at_sign + 1)
    } else {
        Ok(start)
    }
}

/// One host at `p`: plain, or `[v6]` (then only `:`, `/`, `?`, `,` or the end may follow).
/// Returns its range and where it ends.
fn scan_host(s: &[u8], mut p: usize) -> Result<(Range<usize>, usize), RewriteError> {
    if at(s, p) != Some(b'[') {
        let h = p;
        while at(s, p).is_some_and(|c| !matches!(c, b':' | b'/' | b'?' | b',')) {
            p += 1;
        }
        return Ok((h..p, p));
    }
    let h = p + 1;
    p = h;
    while at(s, p).is_some_and(|c| c != b']') {
        p += 1;
    }
    if p >= s.len() {
        return Err(syntax(format!(
            "missing \"]\" after the IPv6 host address at byte {} of the URI",
            h - 1
        )));
    }
    if p == h {
        return Err(syntax(format!(
            "empty IPv6 host address at byte {} of the URI",
            h - 1
        )));
    }
    let host = h..p;
    p += 1;
    if let Some(c) = at(s, p) {
        if !matches!(c, b':' | b'/' | b'?' | b',') {
            return Err(syntax(format!(
                "unexpected character at byte {p} of the URI (expected \":\" or \"/\")"
            )));
        }
    }
    Ok((host, p))
}

/// The port after a host ending at `p` (empty without `:`), and where it ends.
fn scan_port(s: &[u8], mut p: usize) -> (Range<usize>, usize) {
    if at(s, p) != Some(b':') {
        return (p..p, p);
    }
    p += 1;
    let pt = p;
    while at(s, p).is_some_and(|c| !matches!(c, b'/' | b'?' | b',')) {
        p += 1;
    }
    (pt..p, p)
}

/// `host[:port]` pairs separated by commas. libpq joins the hosts (and the ports) with ',' and
/// stores each list if it is not empty; every piece is percent-decoded. Returns where the list
/// ends (at `/`, `?` or the end).
fn scan_hosts<'a>(
    s: &'a [u8],
    hosts_start: usize,
    want_hosts: bool,
    sink: &mut dyn FnMut(Tok<'a>),
) -> Result<usize, RewriteError> {
    let mut p = hosts_start;
    let mut pieces = 0usize;
    let (mut any_host, mut any_port) = (false, false);
    let (mut hosts, mut ports): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    loop {
        let (host, after_host) = scan_host(s, p)?;
        let (port, after_port) = scan_port(s, after_host);
        p = after_port;
        any_host |= !host.is_empty();
        any_port |= !port.is_empty();
        let host_dec = pct_decode(sub(s, host.clone()), host.start)?;
        let port_dec = pct_decode(sub(s, port.clone()), port.start)?;
        if want_hosts {
            if pieces > 0 {
                hosts.push(b',');
                ports.push(b',');
            }
            hosts.extend_from_slice(&host_dec);
            ports.extend_from_slice(&port_dec);
        }
        pieces += 1;
        if at(s, p) != Some(b',') {
            break;
        }
        p += 1;
    }
    if want_hosts {
        for (list, nonempty, key, kind) in [
            (hosts, any_host, &b"host"[..], Kind::UriHost),
            (ports, any_port, &b"port"[..], Kind::UriPort),
        ] {
            if pieces > 1 || nonempty {
                sink(Tok {
                    key: Cow::Borrowed(key),
                    val: Cow::Owned(list),
                    span: hosts_start..p,
                    kind,
                });
            }
        }
    }
    Ok(p)
}

/// The path (the dbname) when a `/` is at `p`: (first byte after the `/`, where it ends).
fn scan_path<'a>(
    s: &'a [u8],
    mut p: usize,
    sink: &mut dyn FnMut(Tok<'a>),
) -> Result<(Option<usize>, usize), RewriteError> {
    if at(s, p) != Some(b'/') {
        return Ok((None, p));
    }
    p += 1;
    let d = p;
    while at(s, p).is_some_and(|c| c != b'?') {
        p += 1;
    }
    let raw = sub(s, d..p);
    // An empty path sets nothing (so PGDATABASE still applies).
    if !raw.is_empty() {
        sink(Tok {
            key: Cow::Borrowed(b"dbname"),
            val: pct_decode(raw, d)?,
            span: d..p,
            kind: Kind::UriPath,
        });
    }
    Ok((Some(d), p))
}

/// One `key=value` query parameter starting at `q`: (the `=`, its end, where the next starts).
fn scan_param(s: &[u8], kstart: usize) -> Result<(usize, usize, usize), RewriteError> {
    let n = s.len();
    let mut q = kstart;
    let mut eq: Option<usize> = None;
    let end = loop {
        match at(s, q) {
            Some(b'=') => {
                if eq.is_some() {
                    return Err(syntax(format!(
                        "extra \"=\" in the URI query parameter at byte {kstart}"
                    )));
                }
                eq = Some(q);
                q += 1;
            }
            None | Some(b'&') => {
                let end = q;
                if q < n {
                    q += 1;
                }
                break end;
            }
            Some(_) => q += 1,
        }
    };
    let Some(eq) = eq else {
        return Err(syntax(format!(
            "missing \"=\" in the URI query parameter at byte {kstart}"
        )));
    };
    Ok((eq, end, q))
}

/// The query parameters starting at `start` (just after `?`); returns `start`.
fn scan_query<'a>(
    s: &'a [u8],
    start: usize,
    sink: &mut dyn FnMut(Tok<'a>),
) -> Result<usize, RewriteError> {
    let mut q = start;
    while q < s.len() {
        let kstart = q;
        let (eq, end, next) = scan_param(s, kstart)?;
        q = next;
        let key = pct_decode(sub(s, kstart..eq), kstart)?;
        let val = pct_decode(sub(s, eq + 1..end), eq + 1)?;
        // libpq's JDBC compatibility: ssl=true means sslmode=require.
        let (key, val) = if &*key == b"ssl" && &*val == b"true" {
            (
                Cow::Borrowed(&b"sslmode"[..]),
                Cow::Borrowed(&b"require"[..]),
            )
        } else {
            (key, val)
        };
        sink(Tok {
            key,
            val,
            span: eq + 1..end,
            kind: Kind::UriQuery,
        });
    }
    Ok(start)
}
