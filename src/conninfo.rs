//! libpq connection strings: find the database libpq would connect to and rewrite it, changing
//! no other byte.
//!
//! This follows libpq's own parser (`fe-connect.c`, PostgreSQL 15–18) rule for rule:
//!
//! * `key=value` conninfo (`conninfo_parse`): blanks around `=` are skipped (so `dbname= user=x`
//!   sets dbname to `user=x`), unquoted values end at whitespace and take backslash escapes, quoted
//!   values `'…'` take `\'` and `\\`, the last setting of a keyword wins, an empty value is an
//!   explicit empty setting.
//! * URIs (`conninfo_uri_parse_options`): `postgresql://` or `postgres://`, userinfo found by looking
//!   ahead for `@` before the first `/`, several `host[:port]` separated by commas, `[v6]` hosts,
//!   the dbname is the whole path up to `?` (an empty path sets nothing), query parameters override
//!   it, every part is percent-decoded (bad escapes and `%00` are errors, `+` is not a space).
//! * keyword arrays (`conninfo_array_parse`): NULL and empty values are skipped, and with
//!   `expand_dbname` only the first non-NULL `dbname` is looked at; if it is a connection string
//!   its settings are applied at its position.
//! * defaults (`conninfo_add_defaults`, `parseServiceInfo`, `connectOptions2`): when no dbname is
//!   given the service file's, then `PGDATABASE`, then the user name is used.
//!
//! Nothing here does I/O except through [`PgEnv`]. Error messages never contain a value from the
//! input (so never a password).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

/// Environment the rewriter may consult (the real implementation reads env vars, files and the
/// password database).
pub trait PgEnv {
    /// An environment variable: `PGDATABASE`, `PGUSER`, `PGSERVICE`, `PGSERVICEFILE`,
    /// `PGSYSCONFDIR`, `HOME`. `Some("")` is "set but empty" (libpq treats some of those differently
    /// from unset).
    fn var(&self, name: &str) -> Option<String>;
    /// What libpq's `pg_fe_getauthname` would give (the effective uid's login name).
    fn os_user(&self) -> Option<String>;
    /// The contents of a file (for `pg_service.conf`); `None` if it cannot be read.
    fn read_file(&self, path: &str) -> Option<String>;
}

/// Called exactly once per rewrite call with the *effective* database name (the one libpq would
/// use): `Ok(Some(new))` reroutes, `Ok(None)` keeps, `Err(msg)` refuses the connect.
pub type Decide<'a> = dyn FnMut(&str) -> Result<Option<String>, String> + 'a;

/// A keyword/value list as `PQconnectdbParams` takes it (values may be NULL).
pub type ParamList = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Why a rewrite failed. Messages are one line and never contain a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteError {
    /// The input is something libpq would reject too (or the effective name cannot be known).
    Syntax(String),
    /// The decision refused the connect (the decision's own message).
    Refused(String),
}

impl fmt::Display for RewriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RewriteError::Syntax(m) => write!(f, "invalid connection string: {m}"),
            RewriteError::Refused(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RewriteError {}

fn syntax(m: impl Into<String>) -> RewriteError {
    RewriteError::Syntax(m.into())
}

// ---------------------------------------------------------------------------------------------
// Small byte helpers (never panic).

/// C `isspace` in the C locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn at(s: &[u8], i: usize) -> Option<u8> {
    s.get(i).copied()
}

fn sub(s: &[u8], r: Range<usize>) -> &[u8] {
    s.get(r).unwrap_or_default()
}

fn splice(s: &[u8], r: Range<usize>, with: &[u8]) -> Vec<u8> {
    let start = r.start.min(s.len());
    let end = r.end.clamp(start, s.len());
    let mut out = Vec::with_capacity(s.len() + with.len());
    out.extend_from_slice(sub(s, 0..start));
    out.extend_from_slice(with);
    out.extend_from_slice(sub(s, end..s.len()));
    out
}

fn no_nul(s: &[u8], what: &str) -> Result<(), RewriteError> {
    if s.contains(&0) {
        return Err(syntax(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

fn lossy(s: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(s)
}

/// libpq's keywords (all versions 15–18), used only to decide whether a keyword may be quoted in
/// an error message (an unknown "keyword" may be a piece of a mis-parsed password).
const KNOWN_KEYWORDS: &[&str] = &[
    "service",
    "servicefile",
    "user",
    "password",
    "passfile",
    "channel_binding",
    "connect_timeout",
    "dbname",
    "host",
    "hostaddr",
    "port",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslcertmode",
    "sslpassword",
    "sslkeylogfile",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "require_auth",
    "min_protocol_version",
    "max_protocol_version",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "replication",
    "target_session_attrs",
    "load_balance_hosts",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "requiressl",
];

/// Keywords whose values are secrets (redacted in logs).
const SECRET_KEYWORDS: &[&[u8]] = &[b"password", b"sslpassword", b"oauth_client_secret"];

fn is_secret(key: &[u8]) -> bool {
    SECRET_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

fn describe_keyword(k: &[u8], pos: usize) -> String {
    match std::str::from_utf8(k) {
        Ok(k) if KNOWN_KEYWORDS.contains(&k) => format!("\"{k}\""),
        _ => format!("the keyword at byte {pos}"),
    }
}

const URI_PREFIXES: [&[u8]; 2] = [b"postgresql://", b"postgres://"];

/// libpq's `uri_prefix_length`: 13 for `postgresql://`, 11 for `postgres://`, else 0.
fn uri_prefix_length(s: &[u8]) -> usize {
    URI_PREFIXES
        .iter()
        .find(|p| s.starts_with(p))
        .map_or(0, |p| p.len())
}

/// libpq's `recognized_connection_string`: a URI prefix or any `=`. Such a `dbname` is expanded
/// by `PQconnectdbParams(…, expand_dbname=1)` and `PQsetdbLogin`.
pub fn recognized_connection_string(s: &[u8]) -> bool {
    uri_prefix_length(s) != 0 || s.contains(&b'=')
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// libpq's `conninfo_uri_decode`. `base` is the offset of `raw` in the input (for messages).
fn pct_decode(raw: &[u8], base: usize) -> Result<Cow<'_, [u8]>, RewriteError> {
    if !raw.contains(&b'%') {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(c) = at(raw, i) {
        if c != b'%' {
            out.push(c);
            i += 1;
            continue;
        }
        match (at(raw, i + 1).and_then(hex), at(raw, i + 2).and_then(hex)) {
            (Some(hi), Some(lo)) => {
                let v = (hi << 4) | lo;
                if v == 0 {
                    return Err(syntax(format!(
                        "forbidden value %00 in the URI (byte {})",
                        base + i
                    )));
                }
                out.push(v);
                i += 3;
            }
            _ => {
                return Err(syntax(format!(
                    "invalid percent-encoded token in the URI (byte {})",
                    base + i
                )))
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn pct_encode(v: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(v.len());
    for &c in v {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(c);
        } else {
            out.push(b'%');
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 15)]);
        }
    }
    out
}

/// Remove conninfo backslash escapes (`\x` → `x`; a trailing lone `\` disappears).
fn unescape(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&c) = it.next() {
        if c == b'\\' {
            if let Some(&n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_quotes(v: &[u8]) -> bool {
    v.is_empty() || v.iter().any(|&c| is_space(c) || c == b'\'' || c == b'\\')
}

/// `'…'` with `\` and `'` escaped.
fn conn_quote(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() + 2);
    out.push(b'\'');
    for &c in v {
        if c == b'\\' || c == b'\'' {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'\'');
    out
}

fn conn_value(v: &[u8], keep_quoted: bool) -> Vec<u8> {
    if keep_quoted || needs_quotes(v) {
        conn_quote(v)
    } else {
        v.to_vec()
    }
}

/// A database name as a keyword-array / `PQsetdbLogin` value that is never expanded as a
/// connection string: as is, or `dbname='…'` when it would look like one.
fn literal_dbname(new: &str) -> Vec<u8> {
    if recognized_connection_string(new.as_bytes()) {
        let mut out = b"dbname=".to_vec();
        out.extend(conn_quote(new.as_bytes()));
        out
    } else {
        new.as_bytes().to_vec()
    }
}

// ---------------------------------------------------------------------------------------------
// The tokenizer: libpq's parsers, reporting where each value's raw bytes are.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Conn { quoted: bool },
    UriUser,
    UriPassword,
    UriHost,
    UriPort,
    UriPath,
    UriQuery,
}

/// One setting, in the order libpq applies them (a later one of the same keyword wins).
#[derive(Debug)]
struct Tok<'a> {
    key: Cow<'a, [u8]>,
    val: Cow<'a, [u8]>,
    /// The raw bytes of the value in the input (with quotes / escapes / percent-encoding).
    span: Range<usize>,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Loc {
    span: Range<usize>,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Shape {
    /// `append_safe`: `" dbname=…"` can be appended without changing the last value.
    Conn { append_safe: bool },
    /// `host_end`: where the host list ends; `path_slot`: first byte after the path's `/`;
    /// `query_start`: first byte after `?`.
    Uri {
        host_end: usize,
        path_slot: Option<usize>,
        query_start: Option<usize>,
    },
}

/// Parse a conninfo or a URI like libpq's `parse_connection_string` (without defaults).
/// `want_hosts`: also report the (decoded, joined) URI host and port lists; otherwise they are only
/// checked.
fn scan<'a>(
    s: &'a [u8],
    want_hosts: bool,
    sink: &mut dyn FnMut(Tok<'a>),
) -> Result<Shape, RewriteError> {
    let p = uri_prefix_length(s);
    if p != 0 {
        scan_uri(s, p, want_hosts, sink)
    } else {
        scan_conninfo(s, sink)
    }
}

/// libpq's `conninfo_parse`.
fn scan_conninfo<'a>(s: &'a [u8], sink: &mut dyn FnMut(Tok<'a>)) -> Result<Shape, RewriteError> {
    let n = s.len();
    let mut i = 0;
    let mut append_safe = true;
    while let Some(c) = at(s, i) {
        if is_space(c) {
            i += 1;
            continue;
        }
        // The keyword: up to '=' or whitespace (then blanks are skipped and '=' must follow).
        let name_start = i;
        let mut name_end = None;
        while let Some(c) = at(s, i) {
            if c == b'=' {
                break;
            }
            if is_space(c) {
                name_end = Some(i);
                i += 1;
                while at(s, i).is_some_and(is_space) {
                    i += 1;
                }
                break;
            }
            i += 1;
        }
        let name_end = name_end.unwrap_or(i);
        let key = sub(s, name_start..name_end);
        if at(s, i) != Some(b'=') {
            return Err(syntax(format!(
                "missing \"=\" after {} in the connection string",
                describe_keyword(key, name_start)
            )));
        }
        if key.is_empty() {
            return Err(syntax(format!(
                "empty keyword at byte {name_start} in the connection string"
            )));
        }
        i += 1;
        while at(s, i).is_some_and(is_space) {
            i += 1;
        }
        let vstart = i;
        if at(s, i) == Some(b'\'') {
            i += 1;
            let content = i;
            let content_end = loop {
                match at(s, i) {
                    None => {
                        return Err(syntax(format!(
                            "unterminated quoted string (the value of {}) in the connection string",
                            describe_keyword(key, name_start)
                        )))
                    }
                    Some(b'\\') => i += 2,
                    Some(b'\'') => {
                        i += 1;
                        break i - 1;
                    }
                    Some(_) => i += 1,
                }
            };
            append_safe = true;
            sink(Tok {
                key: Cow::Borrowed(key),
                val: unescape(sub(s, content..content_end)),
                span: vstart..i,
                kind: Kind::Conn { quoted: true },
            });
        } else {
            let mut dangling = false;
            let vend = loop {
                match at(s, i) {
                    None => break i.min(n),
                    Some(c) if is_space(c) => {
                        i += 1;
                        break i - 1;
                    }
                    Some(b'\\') => {
                        if i + 1 >= n {
                            dangling = true;
                        }
                        i = (i + 2).min(n);
                    }
                    Some(_) => i += 1,
                }
            };
            // A value that runs to the end of the input would swallow an appended " dbname=…" if
            // it is empty (blanks after '=' are skipped) or ends in a lone backslash.
            append_safe = !(vend == n && (vend == vstart || dangling));
            sink(Tok {
                key: Cow::Borrowed(key),
                val: unescape(sub(s, vstart..vend)),
                span: vstart..vend,
                kind: Kind::Conn { quoted: false },
            });
        }
    }
    Ok(Shape::Conn { append_safe })
}

/// libpq's `conninfo_uri_parse_options` + `conninfo_uri_parse_params`.
fn scan_uri<'a>(
    s: &'a [u8],
    prefix: usize,
    want_hosts: bool,
    sink: &mut dyn FnMut(Tok<'a>),
) -> Result<Shape, RewriteError> {
    let n = s.len();
    let start = prefix;
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
        p = at_sign + 1;
    } else {
        p = start;
    }

    // host[:port] pairs separated by commas. libpq joins the hosts (and the ports) with ',' and
    // stores each list if it is not empty; every piece is percent-decoded.
    let hosts_start = p;
    let mut pieces = 0usize;
    let (mut any_host, mut any_port) = (false, false);
    let (mut hosts, mut ports): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    let mut prev;
    loop {
        let host;
        if at(s, p) == Some(b'[') {
            p += 1;
            let h = p;
            while at(s, p).is_some_and(|c| c != b']') {
                p += 1;
            }
            if p >= n {
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
            host = h..p;
            p += 1;
            if let Some(c) = at(s, p) {
                if !matches!(c, b':' | b'/' | b'?' | b',') {
                    return Err(syntax(format!(
                        "unexpected character at byte {p} of the URI (expected \":\" or \"/\")"
                    )));
                }
            }
        } else {
            let h = p;
            while at(s, p).is_some_and(|c| !matches!(c, b':' | b'/' | b'?' | b',')) {
                p += 1;
            }
            host = h..p;
        }
        prev = at(s, p);
        let port = if prev == Some(b':') {
            p += 1;
            let pt = p;
            while at(s, p).is_some_and(|c| !matches!(c, b'/' | b'?' | b',')) {
                p += 1;
            }
            prev = at(s, p);
            pt..p
        } else {
            p..p
        };
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
        if prev != Some(b',') {
            break;
        }
        p += 1;
    }
    let host_end = p;
    if want_hosts {
        for (list, nonempty, key, kind) in [
            (hosts, any_host, &b"host"[..], Kind::UriHost),
            (ports, any_port, &b"port"[..], Kind::UriPort),
        ] {
            if pieces > 1 || nonempty {
                sink(Tok {
                    key: Cow::Borrowed(key),
                    val: Cow::Owned(list),
                    span: hosts_start..host_end,
                    kind,
                });
            }
        }
    }

    let mut path_slot = None;
    if prev == Some(b'/') {
        p += 1;
        let d = p;
        path_slot = Some(d);
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
        prev = at(s, p);
    }

    let mut query_start = None;
    if prev.is_some() {
        p += 1;
        query_start = Some(p);
        let mut q = p;
        while q < n {
            let kstart = q;
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
    }
    Ok(Shape::Uri {
        host_end,
        path_slot,
        query_start,
    })
}

/// The settings of one connection string as `PQconninfoParse` reports them (without defaults):
/// keyword → value, the last setting winning; URI host/port lists joined with commas;
/// `requiressl` and `ssl=true` translated to `sslmode` like libpq. Keywords are not checked against
/// libpq's list (libpq rejects unknown ones, and the list differs between versions).
pub fn parse_options(s: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, RewriteError> {
    no_nul(s, "the connection string")?;
    let mut m = BTreeMap::new();
    scan(s, true, &mut |t: Tok<'_>| {
        let (k, v) = if &*t.key == b"requiressl" {
            let v: &[u8] = if t.val.first() == Some(&b'1') {
                b"require"
            } else {
                b"prefer"
            };
            ("sslmode".to_owned(), v.to_vec())
        } else {
            (lossy(&t.key).into_owned(), t.val.into_owned())
        };
        m.insert(k, v);
    })?;
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// The effective database name.

/// The final values of the settings that decide the database name; `L` says where the dbname
/// setting is (to rewrite it in place).
struct Finals<'a, L> {
    dbname: Option<(Cow<'a, [u8]>, L)>,
    user: Option<Cow<'a, [u8]>>,
    service: Option<Cow<'a, [u8]>>,
    servicefile: Option<Cow<'a, [u8]>>,
}

impl<L> Default for Finals<'_, L> {
    fn default() -> Self {
        Finals {
            dbname: None,
            user: None,
            service: None,
            servicefile: None,
        }
    }
}

impl<'a> Finals<'a, Loc> {
    fn take(&mut self, t: Tok<'a>) {
        match &*t.key {
            b"dbname" => {
                self.dbname = Some((
                    t.val,
                    Loc {
                        span: t.span,
                        kind: t.kind,
                    },
                ))
            }
            b"user" => self.user = Some(t.val),
            b"service" => self.service = Some(t.val),
            b"servicefile" => self.servicefile = Some(t.val),
            _ => {}
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct ServiceVals {
    dbname: Option<Vec<u8>>,
    user: Option<Vec<u8>>,
}

/// libpq's `parseServiceFile`: `Ok(None)` when the group is not in this file.
fn parse_service_file(
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
fn service_values<L>(
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

fn os_user<'a>(env: &dyn PgEnv) -> Result<Cow<'a, [u8]>, RewriteError> {
    env.os_user()
        .filter(|u| !u.is_empty())
        .map(|u| Cow::Owned(u.into_bytes()))
        .ok_or_else(|| {
            syntax("no database and no user name given, and the OS user name is unknown")
        })
}

/// The user libpq ends up with (`connectOptions2`): `PQsetdbLogin`'s login, else the setting
/// (explicitly empty: the OS user), else the service's, else `PGUSER`, else the OS user.
fn user_name<'a, L>(
    f: &Finals<'a, L>,
    login: Option<&'a [u8]>,
    svc: Option<&ServiceVals>,
    env: &dyn PgEnv,
) -> Result<Cow<'a, [u8]>, RewriteError> {
    if let Some(l) = login.filter(|l| !l.is_empty()) {
        return Ok(Cow::Borrowed(l));
    }
    match &f.user {
        Some(u) if !u.is_empty() => Ok(u.clone()),
        Some(_) => os_user(env),
        None => match svc.and_then(|s| s.user.as_ref()) {
            Some(u) if !u.is_empty() => Ok(Cow::Owned(u.clone())),
            Some(_) => os_user(env),
            None => match env.var("PGUSER") {
                Some(u) if !u.is_empty() => Ok(Cow::Owned(u.into_bytes())),
                _ => os_user(env),
            },
        },
    }
}

/// The database libpq will connect to, given the explicit settings `f`.
fn effective<'a, L>(
    f: &Finals<'a, L>,
    login: Option<&'a [u8]>,
    env: &dyn PgEnv,
) -> Result<Cow<'a, [u8]>, RewriteError> {
    if let Some((v, _)) = &f.dbname {
        if !v.is_empty() {
            return Ok(v.clone());
        }
        // Explicitly empty: neither the service nor PGDATABASE apply, the user name does.
        let svc = service_values(f, env)?;
        return user_name(f, login, svc.as_ref(), env);
    }
    let svc = service_values(f, env)?;
    if let Some(db) = svc.as_ref().and_then(|s| s.dbname.as_ref()) {
        if !db.is_empty() {
            return Ok(Cow::Owned(db.clone()));
        }
        return user_name(f, login, svc.as_ref(), env);
    }
    if let Some(v) = env.var("PGDATABASE") {
        if !v.is_empty() {
            return Ok(Cow::Owned(v.into_bytes()));
        }
    }
    user_name(f, login, svc.as_ref(), env)
}

fn run_decide(name: &[u8], decide: &mut Decide<'_>) -> Result<Option<String>, RewriteError> {
    let name =
        std::str::from_utf8(name).map_err(|_| syntax("the database name is not valid UTF-8"))?;
    match decide(name) {
        Err(m) => Err(RewriteError::Refused(m)),
        Ok(None) => Ok(None),
        Ok(Some(new)) if new == name => Ok(None),
        Ok(Some(new)) if new.is_empty() || new.contains('\0') => Err(RewriteError::Refused(
            format!("the new name for database {name:?} is empty or contains a NUL byte"),
        )),
        Ok(Some(new)) => Ok(Some(new)),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing the new name.

fn encode_for(kind: Kind, v: &[u8]) -> Vec<u8> {
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
fn write_db(s: &[u8], shape: &Shape, loc: Option<&Loc>, new: &str) -> Vec<u8> {
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

fn explicit_dbname(s: &[u8]) -> Result<Option<Vec<u8>>, RewriteError> {
    let mut f: Finals<'_, Loc> = Finals::default();
    scan(s, false, &mut |t| f.take(t))?;
    Ok(f.dbname.map(|(v, _)| v.into_owned()))
}

fn internal(what: &str) -> RewriteError {
    syntax(format!(
        "internal error: the rewritten {what} does not name the new database"
    ))
}

/// Rewrite one connection string (`login`: `PQsetdbLogin`'s, overriding the user fallback).
fn rewrite_string<'a>(
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
enum PLoc {
    /// A plain array value.
    Entry(usize),
    /// Inside the expanded connection string (the first `dbname` value).
    InS(Loc),
}

struct ParamsView<'a> {
    finals: Finals<'a, PLoc>,
    /// The first `dbname` entry with a non-NULL value.
    first_db: Option<usize>,
    /// That entry, when it is expanded as a connection string, and the string's shape.
    expanded: Option<(usize, Shape)>,
}

/// libpq's `conninfo_array_parse` (without defaults), for the settings that matter here.
fn params_view<'a>(
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

// ---------------------------------------------------------------------------------------------
// Generic URLs (the Python side).

struct UrlDb<'a> {
    /// The effective database setting (decoded) and its raw span.
    db: Option<(Cow<'a, [u8]>, Range<usize>)>,
    path_slot: Option<usize>,
    host_end: usize,
}

fn is_pg_scheme(scheme: &[u8]) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Redaction.

const MASK: &[u8] = b"***";

/// Replacement spans for the secrets of a connection string or URL, or `None` if it does not parse.
fn secret_spans(s: &[u8]) -> Option<Vec<(Range<usize>, Vec<u8>)>> {
    let mut out = Vec::new();
    if uri_prefix_length(s) != 0 || !looks_like_url(s) {
        let mut nested: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
        scan(s, false, &mut |t| {
            if is_secret(&t.key) {
                out.push((t.span, MASK.to_vec()));
            } else if &*t.key == b"dbname" && recognized_connection_string(&t.val) {
                let inner = redact(&t.val);
                if inner.as_bytes() != &*t.val {
                    nested.push((t.span, inner.into_bytes()));
                }
            }
        })
        .ok()?;
        out.extend(nested);
        return Some(out);
    }
    // A generic URL.
    let sep = s.windows(3).position(|w| w == b"://")?;
    let a = sep + 3;
    let rest = sub(s, a..s.len());
    if let Some(k) = rest.iter().position(|&c| c == b'@') {
        let cand = sub(rest, 0..k);
        if let Some(colon) = cand.iter().position(|&c| c == b':') {
            if !sub(cand, 0..colon).contains(&b'/') {
                out.push((a + colon + 1..a + k, MASK.to_vec()));
            }
        }
    }
    if let Some(qm) = s.iter().position(|&c| c == b'?') {
        let mut q = qm + 1;
        while q < s.len() {
            let end = (q..s.len())
                .find(|&i| at(s, i) == Some(b'&'))
                .unwrap_or(s.len());
            let part = sub(s, q..end);
            if let Some(eq) = part.iter().position(|&c| c == b'=') {
                let key = pct_decode(sub(part, 0..eq), q).unwrap_or_default();
                if is_secret(&key) {
                    out.push((q + eq + 1..end, MASK.to_vec()));
                }
            }
            q = end + 1;
        }
    }
    Some(out)
}

fn looks_like_url(s: &[u8]) -> bool {
    let Some(sep) = s.windows(3).position(|w| w == b"://") else {
        return false;
    };
    let scheme = sub(s, 0..sep);
    scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// Over-redacting fallback for input that does not parse.
fn heuristic_spans(s: &[u8]) -> Vec<(Range<usize>, Vec<u8>)> {
    let mut out = Vec::new();
    if let Some(sep) = s.windows(3).position(|w| w == b"://") {
        let a = sep + 3;
        if let Some(last_at) = s.iter().rposition(|&c| c == b'@').filter(|&i| i >= a) {
            if let Some(colon) = sub(s, a..last_at).iter().position(|&c| c == b':') {
                out.push((a + colon + 1..last_at, MASK.to_vec()));
            }
        }
    }
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower
        .get(from..)
        .and_then(|t| t.windows(8).position(|w| w == b"password"))
    {
        let mut i = from + pos + 8;
        from = i;
        while at(s, i).is_some_and(is_space) {
            i += 1;
        }
        if at(s, i) != Some(b'=') {
            continue;
        }
        i += 1;
        while at(s, i).is_some_and(is_space) {
            i += 1;
        }
        let vstart = i;
        if at(s, i) == Some(b'\'') {
            i += 1;
            while let Some(c) = at(s, i) {
                i += if c == b'\\' { 2 } else { 1 };
                if c == b'\'' {
                    break;
                }
            }
        } else {
            while let Some(c) = at(s, i) {
                if is_space(c) || c == b'&' {
                    break;
                }
                i += if c == b'\\' { 2 } else { 1 };
            }
        }
        let vend = i.min(s.len());
        out.push((vstart..vend, MASK.to_vec()));
        from = vend.max(from);
    }
    out
}

/// For logging: `s` with every password (conninfo `password=…`, `sslpassword=…`, URI userinfo
/// password, `?password=`) replaced by `***`. Input that does not parse is redacted generously.
pub fn redact(s: &[u8]) -> String {
    let mut spans = if s.contains(&0) {
        None
    } else {
        secret_spans(s)
    }
    .unwrap_or_else(|| heuristic_spans(s));
    spans.sort_by_key(|(r, _)| r.start);
    let mut out = Vec::with_capacity(s.len());
    let mut pos = 0;
    for (r, with) in spans {
        if r.start < pos || r.start > s.len() {
            continue;
        }
        out.extend_from_slice(sub(s, pos..r.start));
        out.extend_from_slice(&with);
        pos = r.end.clamp(r.start, s.len());
    }
    out.extend_from_slice(sub(s, pos..s.len()));
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::collections::HashMap;

    #[derive(Default, Clone)]
    struct Env {
        vars: HashMap<String, String>,
        user: Option<String>,
        files: HashMap<String, String>,
    }

    impl Env {
        fn new() -> Env {
            Env {
                user: Some("osuser".into()),
                ..Env::default()
            }
        }
        fn var(mut self, k: &str, v: &str) -> Env {
            self.vars.insert(k.into(), v.into());
            self
        }
        fn file(mut self, path: &str, text: &str) -> Env {
            self.files.insert(path.into(), text.into());
            self
        }
        fn no_user(mut self) -> Env {
            self.user = None;
            self
        }
    }

    impl PgEnv for Env {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn os_user(&self) -> Option<String> {
            self.user.clone()
        }
        fn read_file(&self, path: &str) -> Option<String> {
            self.files.get(path).cloned()
        }
    }

    fn jw03(x: &str) -> Result<Option<String>, String> {
        Ok((!x.ends_with("_jw03")).then(|| format!("{x}_jw03")))
    }

    fn rw_env(s: &str, env: &Env) -> Result<Option<String>, RewriteError> {
        rewrite_conninfo(s.as_bytes(), env, &mut jw03)
            .map(|o| o.map(|v| String::from_utf8(v).unwrap()))
    }

    fn rw(s: &str) -> Option<String> {
        rw_env(s, &Env::new()).unwrap()
    }

    fn opts(s: &[u8]) -> BTreeMap<String, Vec<u8>> {
        parse_options(s).unwrap()
    }

    fn syntax_err(s: &str) -> String {
        match rewrite_conninfo(s.as_bytes(), &Env::new(), &mut jw03) {
            Err(RewriteError::Syntax(m)) => m,
            other => panic!("{s:?}: expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn conninfo_plain() {
        assert_eq!(
            rw("host=h dbname=myapp user=u").unwrap(),
            "host=h dbname=myapp_jw03 user=u"
        );
        assert_eq!(rw("dbname=myapp").unwrap(), "dbname=myapp_jw03");
        assert_eq!(
            rw("  dbname =  myapp\t port=1 ").unwrap(),
            "  dbname =  myapp_jw03\t port=1 "
        );
        // Already rerouted: unchanged.
        assert_eq!(rw("dbname=myapp_jw03"), None);
        // The last setting wins and is the one rewritten.
        assert_eq!(rw("dbname=a dbname=b").unwrap(), "dbname=a dbname=b_jw03");
        // Keywords are case-sensitive: DBNAME is not dbname (libpq rejects it later).
        assert_eq!(rw("DBNAME=x dbname=y").unwrap(), "DBNAME=x dbname=y_jw03");
    }

    #[test]
    fn conninfo_quoting_and_escapes() {
        assert_eq!(
            rw("dbname='my app' port=1").unwrap(),
            "dbname='my app_jw03' port=1"
        );
        assert_eq!(rw("dbname='x'").unwrap(), "dbname='x_jw03'");
        assert_eq!(
            rw(r"dbname='it\'s' host=h").unwrap(),
            r"dbname='it\'s_jw03' host=h"
        );
        assert_eq!(rw(r"dbname='a\\b'").unwrap(), r"dbname='a\\b_jw03'");
        // Unquoted with escapes: the new value needs quoting.
        assert_eq!(
            rw(r"dbname=my\ app host=h").unwrap(),
            "dbname='my app_jw03' host=h"
        );
        assert_eq!(rw(r"dbname=\a\b").unwrap(), "dbname=ab_jw03");
        // A quote inside an unquoted value is literal.
        assert_eq!(rw("dbname=a'b").unwrap(), r"dbname='a\'b_jw03'");
        // Blanks after '=' are skipped, so the value is "user=x".
        assert_eq!(rw("dbname= user=x").unwrap(), "dbname= user=x_jw03");
        assert_eq!(opts(b"dbname= user=x")["dbname"], b"user=x");
        // A quoted value may be followed directly by the next keyword.
        assert_eq!(rw("dbname='a'user=b").unwrap(), "dbname='a_jw03'user=b");
        assert_eq!(opts(b"dbname='a'user=b")["user"], b"b");
        // A trailing lone backslash is dropped by libpq.
        assert_eq!(opts(br"password=abc\")["password"], b"abc");
        assert_eq!(opts(b"dbname=\xff\xfe")["dbname"], b"\xff\xfe");
    }

    #[test]
    fn conninfo_preserves_other_bytes() {
        let s = b"password='p\xff\\'w' dbname=app sslmode=require";
        let out = rewrite_conninfo(s, &Env::new(), &mut jw03)
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            b"password='p\xff\\'w' dbname=app_jw03 sslmode=require".to_vec()
        );
    }

    #[test]
    fn conninfo_syntax_errors() {
        assert!(syntax_err("myapp").contains("missing \"=\""));
        assert!(syntax_err("host=h x").contains("missing"));
        assert!(syntax_err("dbname='abc").contains("unterminated"));
        assert!(syntax_err(r"dbname='abc\'").contains("unterminated"));
        assert!(syntax_err("=x").contains("empty keyword"));
        assert!(syntax_err("host = = x y").contains("missing"));
        // Messages never quote what may be a piece of a password.
        let m = syntax_err("password=se cret dbname=x");
        assert!(!m.contains("cret") && !m.contains("se"), "{m}");
        let m = syntax_err("user=u password='sec");
        assert!(!m.contains("sec"), "{m}");
        assert!(syntax_err("host=h dbname").contains("\"dbname\""));
        let e = rewrite_conninfo(b"a\0b", &Env::new(), &mut jw03).unwrap_err();
        assert!(matches!(e, RewriteError::Syntax(_)));
    }

    #[test]
    fn conninfo_fallbacks() {
        // Empty conninfo: PGDATABASE.
        let env = Env::new().var("PGDATABASE", "envdb");
        assert_eq!(rw_env("", &env).unwrap().unwrap(), "dbname=envdb_jw03");
        assert_eq!(
            rw_env("host=h", &env).unwrap().unwrap(),
            "host=h dbname=envdb_jw03"
        );
        assert_eq!(
            rw_env("host=h   ", &env).unwrap().unwrap(),
            "host=h    dbname=envdb_jw03"
        );
        assert_eq!(rw_env("  ", &env).unwrap().unwrap(), "   dbname=envdb_jw03");
        // No PGDATABASE: PGUSER, then the OS user.
        let env = Env::new().var("PGUSER", "bob");
        assert_eq!(
            rw_env("host=h", &env).unwrap().unwrap(),
            "host=h dbname=bob_jw03"
        );
        assert_eq!(rw("host=h").unwrap(), "host=h dbname=osuser_jw03");
        // Empty PGDATABASE / PGUSER are "set but empty": the next fallback applies.
        let env = Env::new().var("PGDATABASE", "").var("PGUSER", "");
        assert_eq!(
            rw_env("host=h", &env).unwrap().unwrap(),
            "host=h dbname=osuser_jw03"
        );
        // The user keyword beats PGUSER; an explicitly empty user means the OS user.
        let env = Env::new().var("PGUSER", "bob");
        assert_eq!(
            rw_env("user=carol", &env).unwrap().unwrap(),
            "user=carol dbname=carol_jw03"
        );
        assert_eq!(
            rw_env("user=''", &env).unwrap().unwrap(),
            "user='' dbname=osuser_jw03"
        );
        // An explicitly empty dbname ignores PGDATABASE and is rewritten in place.
        let env = Env::new().var("PGDATABASE", "envdb").var("PGUSER", "bob");
        assert_eq!(
            rw_env("dbname='' host=h", &env).unwrap().unwrap(),
            "dbname='bob_jw03' host=h"
        );
        assert_eq!(
            rw_env("host=h dbname=", &env).unwrap().unwrap(),
            "host=h dbname=bob_jw03"
        );
        assert_eq!(
            rw_env("host=h dbname=  ", &env).unwrap().unwrap(),
            "host=h dbname=  bob_jw03"
        );
        // No user name at all: refuse rather than guess.
        assert!(matches!(
            rw_env("host=h", &Env::new().no_user()),
            Err(RewriteError::Syntax(_))
        ));
        // A value running to the end would swallow an appended setting: prepend instead.
        let env = Env::new().var("PGDATABASE", "envdb");
        assert_eq!(
            rw_env("password=", &env).unwrap().unwrap(),
            "dbname=envdb_jw03 password="
        );
        assert_eq!(
            rw_env("password=   ", &env).unwrap().unwrap(),
            "dbname=envdb_jw03 password=   "
        );
        assert_eq!(
            rw_env(r"password=ab\", &env).unwrap().unwrap(),
            r"dbname=envdb_jw03 password=ab\"
        );
        assert_eq!(
            rw_env(r"password=ab\  ", &env).unwrap().unwrap(),
            r"password=ab\   dbname=envdb_jw03"
        );
        assert_eq!(
            opts(br"password=ab\   dbname=envdb_jw03")["password"],
            b"ab "
        );
    }

    const SVC: &str = "# comment\n[other]\ndbname=nope\n\n  [svc]  \ndbname=svcdb\nuser=svcuser\nhost=h\ndbname=second\n[next]\ndbname=no\n";

    #[test]
    fn service_fallbacks() {
        let home = Env::new()
            .var("HOME", "/home/me")
            .file("/home/me/.pg_service.conf", SVC);
        let env = home
            .clone()
            .var("PGSERVICE", "svc")
            .var("PGDATABASE", "envdb");
        // The service's dbname beats PGDATABASE; the first setting in the group wins.
        assert_eq!(
            rw_env("host=x", &env).unwrap().unwrap(),
            "host=x dbname=svcdb_jw03"
        );
        // The service keyword beats PGSERVICE.
        let env = home.clone().var("PGSERVICE", "nosuch");
        assert_eq!(
            rw_env("service=svc", &env).unwrap().unwrap(),
            "service=svc dbname=svcdb_jw03"
        );
        // An explicit dbname wins (and the service file is not even needed).
        assert_eq!(
            rw_env("service=nosuch dbname=d", &env).unwrap().unwrap(),
            "service=nosuch dbname=d_jw03"
        );
        // A missing service is an error, as in libpq.
        let e = rw_env("host=x", &env).unwrap_err();
        assert!(
            e.to_string()
                .contains("definition of service \"nosuch\" not found"),
            "{e}"
        );
        // A service without dbname: PGDATABASE, then its user.
        let text = "[s]\nuser=svcuser\n";
        let env = Env::new()
            .var("PGSERVICEFILE", "/x/svc.conf")
            .file("/x/svc.conf", text)
            .var("PGSERVICE", "s");
        assert_eq!(rw_env("", &env).unwrap().unwrap(), "dbname=svcuser_jw03");
        assert_eq!(
            rw_env("", &env.clone().var("PGDATABASE", "e"))
                .unwrap()
                .unwrap(),
            "dbname=e_jw03"
        );
        assert_eq!(
            rw_env("user=u", &env).unwrap().unwrap(),
            "user=u dbname=u_jw03"
        );
        // Explicitly empty dbname: the service's dbname does not apply, its user does.
        let env = home.clone().var("PGSERVICE", "svc");
        assert_eq!(
            rw_env("dbname=''", &env).unwrap().unwrap(),
            "dbname='svcuser_jw03'"
        );
        // PGSYSCONFDIR, then the Debian default, when the first file lacks the group.
        let env = home
            .clone()
            .var("PGSYSCONFDIR", "/etc/pg")
            .file("/etc/pg/pg_service.conf", "[sys]\ndbname=sysdb\n");
        assert_eq!(
            rw_env("service=sys", &env).unwrap().unwrap(),
            "service=sys dbname=sysdb_jw03"
        );
        let env = Env::new().file(
            "/etc/postgresql-common/pg_service.conf",
            "[d]\ndbname=debdb\n",
        );
        assert_eq!(
            rw_env("service=d", &env).unwrap().unwrap(),
            "service=d dbname=debdb_jw03"
        );
        // A group found in the first file ends the search even without a dbname.
        let env = Env::new()
            .var("PGSERVICEFILE", "/a")
            .file("/a", "[d]\nport=1\n")
            .file(
                "/etc/postgresql-common/pg_service.conf",
                "[d]\ndbname=debdb\n",
            );
        assert_eq!(
            rw_env("service=d", &env).unwrap().unwrap(),
            "service=d dbname=osuser_jw03"
        );
        // The servicefile keyword (libpq 18).
        let env = Env::new().file("/s.conf", "[q]\ndbname=qdb\n");
        assert_eq!(
            rw_env("servicefile=/s.conf service=q", &env)
                .unwrap()
                .unwrap(),
            "servicefile=/s.conf service=q dbname=qdb_jw03"
        );
        // Errors in the group are errors.
        for bad in ["[q]\nnoequals\n", "[q]\nservice=x\n", "[q]\nldap://x/y\n"] {
            let env = Env::new().file("/s.conf", bad);
            assert!(
                rw_env("servicefile=/s.conf service=q", &env).is_err(),
                "{bad}"
            );
        }
        let long = format!("[q]\nhost={}\n", "h".repeat(1020));
        let env = Env::new().file("/s.conf", &long);
        assert!(rw_env("servicefile=/s.conf service=q", &env)
            .unwrap_err()
            .to_string()
            .contains("too long"));
        // Errors outside the group are not looked at.
        let env = Env::new().file("/s.conf", "[zz]\nnoequals\n[q]\ndbname=ok\n");
        assert_eq!(
            rw_env("servicefile=/s.conf service=q", &env)
                .unwrap()
                .unwrap(),
            "servicefile=/s.conf service=q dbname=ok_jw03"
        );
        // `dbname = x` (spaces) is not the dbname key.
        assert_eq!(
            parse_service_file("[q]\ndbname = x\n", b"q", "f").unwrap(),
            Some(ServiceVals::default())
        );
        assert_eq!(
            parse_service_file("[qq]\ndbname=x\n", b"q", "f").unwrap(),
            None
        );
        // Like libpq, anything after the closing bracket is ignored.
        assert_eq!(
            parse_service_file("[q]x\ndbname=x\n", b"q", "f")
                .unwrap()
                .unwrap()
                .dbname,
            Some(b"x".to_vec())
        );
    }

    #[test]
    fn decide_contract() {
        let calls = Cell::new(0);
        let mut keep = |n: &str| {
            calls.set(calls.get() + 1);
            assert_eq!(n, "app");
            Ok(None)
        };
        assert_eq!(
            rewrite_conninfo(b"dbname=a dbname=app", &Env::new(), &mut keep),
            Ok(None)
        );
        assert_eq!(calls.get(), 1);
        let mut refuse = |_: &str| Err("dagz: no".to_owned());
        assert_eq!(
            rewrite_conninfo(b"dbname=app", &Env::new(), &mut refuse),
            Err(RewriteError::Refused("dagz: no".into()))
        );
        let mut same = |n: &str| Ok(Some(n.to_owned()));
        assert_eq!(
            rewrite_conninfo(b"dbname=app", &Env::new(), &mut same),
            Ok(None)
        );
        let mut empty = |_: &str| Ok(Some(String::new()));
        assert!(matches!(
            rewrite_conninfo(b"dbname=app", &Env::new(), &mut empty),
            Err(RewriteError::Refused(_))
        ));
        let mut nul = |_: &str| Ok(Some("a\0b".to_owned()));
        assert!(matches!(
            rewrite_conninfo(b"dbname=app", &Env::new(), &mut nul),
            Err(RewriteError::Refused(_))
        ));
        // A non-UTF-8 name is not handed to the decision.
        let mut never = |_: &str| -> Result<Option<String>, String> { panic!("called") };
        assert!(matches!(
            rewrite_conninfo(b"dbname=\xff", &Env::new(), &mut never),
            Err(RewriteError::Syntax(_))
        ));
        // New names that need quoting get it.
        let mut spaced = |_: &str| Ok(Some("a b'c\\".to_owned()));
        let out = rewrite_conninfo(b"dbname=app port=1", &Env::new(), &mut spaced)
            .unwrap()
            .unwrap();
        assert_eq!(out, br"dbname='a b\'c\\' port=1".to_vec());
    }

    #[test]
    fn uris() {
        assert_eq!(
            rw("postgresql://u:pw@h:5432/myapp?sslmode=disable").unwrap(),
            "postgresql://u:pw@h:5432/myapp_jw03?sslmode=disable"
        );
        assert_eq!(rw("postgres://h/myapp").unwrap(), "postgres://h/myapp_jw03");
        assert_eq!(
            rw("postgresql://h/my%20app").unwrap(),
            "postgresql://h/my%20app_jw03"
        );
        assert_eq!(
            rw("postgresql://h/a%2fb").unwrap(),
            "postgresql://h/a%2Fb_jw03"
        );
        assert_eq!(
            rw("postgresql://h/a/b").unwrap(),
            "postgresql://h/a%2Fb_jw03"
        );
        assert_eq!(
            rw("postgresql://u@h1:5432,h2:5433/db").unwrap(),
            "postgresql://u@h1:5432,h2:5433/db_jw03"
        );
        assert_eq!(
            rw("postgresql://[::1]:5432/db").unwrap(),
            "postgresql://[::1]:5432/db_jw03"
        );
        assert_eq!(
            rw("postgresql://[::1],[fe80::2]/db").unwrap(),
            "postgresql://[::1],[fe80::2]/db_jw03"
        );
        // ?dbname= overrides the path; the last one wins; keys are percent-decoded.
        assert_eq!(
            rw("postgresql://h/db?dbname=other").unwrap(),
            "postgresql://h/db?dbname=other_jw03"
        );
        assert_eq!(
            rw("postgresql://h/db?db%6Eame=o&port=1").unwrap(),
            "postgresql://h/db?db%6Eame=o_jw03&port=1"
        );
        assert_eq!(
            rw("postgresql://h?dbname=a&dbname=b").unwrap(),
            "postgresql://h?dbname=a&dbname=b_jw03"
        );
        // `+` is not a space in libpq.
        assert_eq!(opts(b"postgresql://h/a+b")["dbname"], b"a+b");
        // No path / empty path: the fallback, appended as ?dbname=.
        let env = Env::new().var("PGDATABASE", "envdb");
        assert_eq!(
            rw_env("postgresql://h", &env).unwrap().unwrap(),
            "postgresql://h?dbname=envdb_jw03"
        );
        assert_eq!(
            rw_env("postgresql://", &env).unwrap().unwrap(),
            "postgresql://?dbname=envdb_jw03"
        );
        assert_eq!(
            rw_env("postgresql://h/", &env).unwrap().unwrap(),
            "postgresql://h/?dbname=envdb_jw03"
        );
        assert_eq!(
            rw_env("postgresql://h?", &env).unwrap().unwrap(),
            "postgresql://h?dbname=envdb_jw03"
        );
        assert_eq!(
            rw_env("postgresql://h/?sslmode=disable", &env)
                .unwrap()
                .unwrap(),
            "postgresql://h/?sslmode=disable&dbname=envdb_jw03"
        );
        assert_eq!(
            rw_env("postgresql://h?a=1&", &env).unwrap().unwrap(),
            "postgresql://h?a=1&dbname=envdb_jw03"
        );
        assert_eq!(
            rw_env("postgresql://bob@h", &Env::new()).unwrap().unwrap(),
            "postgresql://bob@h?dbname=bob_jw03"
        );
        // An empty ?dbname= is an explicit empty setting: the user, in place.
        assert_eq!(
            rw_env("postgresql://h/db?dbname=&user=al", &env)
                .unwrap()
                .unwrap(),
            "postgresql://h/db?dbname=al_jw03&user=al"
        );
        // Userinfo is decoded; the lookahead stops at the first '/'.
        let o = opts(b"postgresql://a%40b:p%3Aw@h/d");
        assert_eq!(
            (o["user"].as_slice(), o["password"].as_slice()),
            (&b"a@b"[..], &b"p:w"[..])
        );
        let o = opts(b"postgresql://u:p:q@h/d");
        assert_eq!(o["password"], b"p:q");
        let o = opts(b"postgresql://h/d@x");
        assert_eq!(
            (o["host"].as_slice(), o["dbname"].as_slice()),
            (&b"h"[..], &b"d@x"[..])
        );
        let o = opts(b"postgresql://h1,h2:5433,[::1]:7/d");
        assert_eq!(
            (o["host"].as_slice(), o["port"].as_slice()),
            (&b"h1,h2,::1"[..], &b",5433,7"[..])
        );
        let o = opts(b"postgresql://u@?ssl=true");
        assert_eq!(o["sslmode"], b"require");
        assert!(!o.contains_key("host"));
    }

    #[test]
    fn uri_errors() {
        for bad in [
            "postgresql://h/%zz",
            "postgresql://h/%4",
            "postgresql://h/%",
            "postgresql://h/a%00b",
            "postgresql://u:p%q@h/d",
            "postgresql://h%/d",
            "postgresql://[::1",
            "postgresql://[]/d",
            "postgresql://[::1]x/d",
            "postgresql://h/d?a",
            "postgresql://h/d?a=b=c",
            "postgresql://h/d?a=1&&b=2",
            "postgresql://h/d?%zz=1",
        ] {
            let m = syntax_err(bad);
            assert!(!m.contains("p%q"), "{m}");
        }
    }

    fn params(list: &[(&str, Option<&str>)]) -> ParamList {
        list.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
            .collect()
    }

    fn rp(list: &[(&str, Option<&str>)], expand: bool, env: &Env) -> Option<ParamList> {
        let p: Vec<(&[u8], Option<&[u8]>)> = list
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.map(str::as_bytes)))
            .collect();
        rewrite_params(&p, expand, env, &mut jw03).unwrap()
    }

    #[test]
    fn params_plain() {
        let env = Env::new();
        let l = [("host", Some("h")), ("dbname", Some("app")), ("user", None)];
        assert_eq!(
            rp(&l, false, &env).unwrap(),
            params(&[
                ("host", Some("h")),
                ("dbname", Some("app_jw03")),
                ("user", None)
            ])
        );
        assert_eq!(rp(&[("dbname", Some("app_jw03"))], true, &env), None);
        // Later non-empty values override; empty and NULL values are skipped.
        let l = [
            ("dbname", Some("a")),
            ("dbname", Some("b")),
            ("dbname", Some("")),
            ("dbname", None),
        ];
        assert_eq!(
            rp(&l, false, &env).unwrap(),
            params(&[
                ("dbname", Some("a")),
                ("dbname", Some("b_jw03")),
                ("dbname", Some("")),
                ("dbname", None)
            ])
        );
        // No dbname: appended.
        let env = Env::new().var("PGUSER", "bob");
        assert_eq!(
            rp(&[("host", Some("h"))], true, &env).unwrap(),
            params(&[("host", Some("h")), ("dbname", Some("bob_jw03"))])
        );
        assert_eq!(
            rp(&[("dbname", Some("")), ("user", Some("al"))], true, &env).unwrap(),
            params(&[
                ("dbname", Some("")),
                ("user", Some("al")),
                ("dbname", Some("al_jw03"))
            ])
        );
        assert_eq!(
            rp(&[], false, &env).unwrap(),
            params(&[("dbname", Some("bob_jw03"))])
        );
        // Without expand_dbname a value with '=' is a plain (odd) name.
        assert_eq!(
            rp(&[("dbname", Some("host=x"))], false, &env).unwrap(),
            params(&[("dbname", Some("host=x_jw03"))])
        );
    }

    #[test]
    fn params_expand_dbname() {
        let env = Env::new();
        // A URI as the first dbname: rewritten inside.
        let l = [
            ("host", Some("h")),
            ("dbname", Some("postgresql://u@h2/app?sslmode=disable")),
        ];
        assert_eq!(
            rp(&l, true, &env).unwrap(),
            params(&[
                ("host", Some("h")),
                ("dbname", Some("postgresql://u@h2/app_jw03?sslmode=disable"))
            ])
        );
        // A conninfo as the first dbname.
        let l = [("dbname", Some("dbname='my app' host=x"))];
        assert_eq!(
            rp(&l, true, &env).unwrap(),
            params(&[("dbname", Some("dbname='my app_jw03' host=x"))])
        );
        // A later plain dbname overrides the expanded one.
        let l = [("dbname", Some("host=x dbname=a")), ("dbname", Some("b"))];
        assert_eq!(
            rp(&l, true, &env).unwrap(),
            params(&[
                ("dbname", Some("host=x dbname=a")),
                ("dbname", Some("b_jw03"))
            ])
        );
        // Only the first non-NULL dbname is expanded.
        let l = [
            ("dbname", None),
            ("dbname", Some("plain")),
            ("dbname", Some("host=x")),
        ];
        assert_eq!(
            rp(&l, true, &env).unwrap(),
            params(&[
                ("dbname", None),
                ("dbname", Some("plain")),
                ("dbname", Some("host=x_jw03"))
            ])
        );
        // The expanded string without a dbname: its user; the new name is appended.
        let l = [("user", Some("tom")), ("dbname", Some("host=x user=sue"))];
        assert_eq!(
            rp(&l, true, &env).unwrap(),
            params(&[
                ("user", Some("tom")),
                ("dbname", Some("host=x user=sue")),
                ("dbname", Some("sue_jw03"))
            ])
        );
        let l = [("dbname", Some("host=x user=sue")), ("user", Some("tom"))];
        assert_eq!(
            rp(&l, true, &env).unwrap().last().unwrap().1.as_deref(),
            Some(&b"tom_jw03"[..])
        );
        // An expanded URI without a path.
        let env2 = Env::new().var("PGDATABASE", "e");
        let l = [("dbname", Some("postgresql://h"))];
        assert_eq!(
            rp(&l, true, &env2).unwrap(),
            params(&[
                ("dbname", Some("postgresql://h")),
                ("dbname", Some("e_jw03"))
            ])
        );
        // A new name that looks like a connection string is never expanded.
        let env3 = Env::new().var("PGDATABASE", "a=b");
        assert_eq!(
            rp(&[("host", Some("h"))], true, &env3).unwrap(),
            params(&[("host", Some("h")), ("dbname", Some("dbname='a=b_jw03'"))])
        );
        assert_eq!(
            rp(&[("host", Some("h"))], false, &env3).unwrap(),
            params(&[("host", Some("h")), ("dbname", Some("a=b_jw03"))])
        );
        let mut eq = |_: &str| Ok(Some("x=y".to_owned()));
        let p: Vec<(&[u8], Option<&[u8]>)> = vec![(b"dbname", Some(b"app"))];
        let out = rewrite_params(&p, true, &env, &mut eq).unwrap().unwrap();
        assert_eq!(out, params(&[("dbname", Some("dbname='x=y'"))]));
        // Syntax errors in the expanded string are errors.
        let p: Vec<(&[u8], Option<&[u8]>)> = vec![(b"dbname", Some(b"dbname='x"))];
        assert!(matches!(
            rewrite_params(&p, true, &env, &mut jw03),
            Err(RewriteError::Syntax(_))
        ));
        let p: Vec<(&[u8], Option<&[u8]>)> = vec![(b"dbname", Some(b"dbname='x"))];
        assert!(rewrite_params(&p, false, &env, &mut jw03).is_ok());
    }

    fn sd(db: Option<&str>, login: Option<&str>, env: &Env) -> Option<String> {
        rewrite_setdb(
            db.map(str::as_bytes),
            login.map(str::as_bytes),
            env,
            &mut jw03,
        )
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn setdb_login() {
        let env = Env::new().var("PGUSER", "pguser");
        assert_eq!(sd(None, Some("bob"), &env).unwrap(), "bob_jw03");
        assert_eq!(sd(Some(""), Some("bob"), &env).unwrap(), "bob_jw03");
        assert_eq!(sd(None, None, &env).unwrap(), "pguser_jw03");
        assert_eq!(sd(None, Some(""), &env).unwrap(), "pguser_jw03");
        assert_eq!(sd(Some("myapp"), Some("bob"), &env).unwrap(), "myapp_jw03");
        assert_eq!(sd(Some("myapp_jw03"), None, &env), None);
        // PGDATABASE beats the login.
        assert_eq!(
            sd(None, Some("bob"), &env.clone().var("PGDATABASE", "e")).unwrap(),
            "e_jw03"
        );
        // A conninfo or URI as dbName.
        assert_eq!(
            sd(Some("dbname=app host=x"), None, &env).unwrap(),
            "dbname=app_jw03 host=x"
        );
        assert_eq!(
            sd(Some("host=x"), Some("bob"), &env).unwrap(),
            "host=x dbname=bob_jw03"
        );
        assert_eq!(
            sd(Some("host=x user=u"), Some("bob"), &env).unwrap(),
            "host=x user=u dbname=bob_jw03"
        );
        assert_eq!(
            sd(Some("host=x user=u"), None, &env).unwrap(),
            "host=x user=u dbname=u_jw03"
        );
        assert_eq!(
            sd(Some("postgresql://h/app"), None, &env).unwrap(),
            "postgresql://h/app_jw03"
        );
        // A service in PGSERVICE.
        let env = Env::new()
            .var("PGSERVICE", "s")
            .var("PGSERVICEFILE", "/f")
            .file("/f", "[s]\ndbname=sdb\n");
        assert_eq!(sd(None, Some("bob"), &env).unwrap(), "sdb_jw03");
        // New names that look like connection strings are wrapped.
        let mut eq = |_: &str| Ok(Some("postgres://x".to_owned()));
        let out = rewrite_setdb(Some(b"app"), None, &Env::new(), &mut eq)
            .unwrap()
            .unwrap();
        assert_eq!(out, b"dbname='postgres://x'".to_vec());
        assert!(rewrite_setdb(Some(b"dbname='x"), None, &Env::new(), &mut jw03).is_err());
    }

    #[test]
    fn urls() {
        let g = |u: &str| url_get_db(u.as_bytes()).unwrap();
        let s = |u: &str, d: &str| String::from_utf8(url_set_db(u.as_bytes(), d).unwrap()).unwrap();
        assert_eq!(
            g("postgresql+psycopg2://u:p@h:5432/db?x=1").as_deref(),
            Some("db")
        );
        assert_eq!(
            s("postgresql+psycopg2://u:p@h:5432/db?x=1", "db_jw03"),
            "postgresql+psycopg2://u:p@h:5432/db_jw03?x=1"
        );
        assert_eq!(
            g("mysql+pymysql://u:p@h/db?charset=utf8mb4").as_deref(),
            Some("db")
        );
        assert_eq!(
            s("mysql://u:p@h:3306/db", "db_jw01"),
            "mysql://u:p@h:3306/db_jw01"
        );
        assert_eq!(g("mysql://h:3306"), None);
        assert_eq!(g("mysql://h:3306/"), None);
        assert_eq!(s("mysql://h:3306", "n"), "mysql://h:3306/n");
        assert_eq!(s("mysql://h:3306/", "n"), "mysql://h:3306/n");
        assert_eq!(s("mysql://h:3306?x=1", "n"), "mysql://h:3306/n?x=1");
        // SQLAlchemy: a password may hold '/' and '?'.
        assert_eq!(g("mysql://u:p/w?x@h/db").as_deref(), Some("db"));
        assert_eq!(s("mysql://u:p/w?x@h/db", "n"), "mysql://u:p/w?x@h/n");
        // A mysql ?database= is not the database.
        assert_eq!(g("mysql://h/db?database=x").as_deref(), Some("db"));
        assert_eq!(
            g("postgresql+asyncpg://h/db?database=x").as_deref(),
            Some("x")
        );
        assert_eq!(
            s("postgresql+asyncpg://h/db?database=x", "y"),
            "postgresql+asyncpg://h/db?database=y"
        );
        // libpq URIs as libpq reads them.
        assert_eq!(
            g("postgresql://u@h1:5432,h2:5433/db").as_deref(),
            Some("db")
        );
        assert_eq!(
            s("postgresql://u@h1:5432,h2:5433/db", "db_jw03"),
            "postgresql://u@h1:5432,h2:5433/db_jw03"
        );
        assert_eq!(g("postgres://[::1]:5432/d%20b").as_deref(), Some("d b"));
        assert_eq!(
            s("postgres://[::1]:5432/d%20b", "d b_jw03"),
            "postgres://[::1]:5432/d%20b_jw03"
        );
        assert_eq!(s("mysql://[::1]:3306", "x"), "mysql://[::1]:3306/x");
        assert_eq!(g("postgresql://h/db?dbname=q").as_deref(), Some("q"));
        assert_eq!(
            s("postgresql://h/db?dbname=q", "z"),
            "postgresql://h/db?dbname=z"
        );
        assert_eq!(g("postgresql://h"), None);
        assert_eq!(s("postgresql://h", "n"), "postgresql://h/n");
        assert_eq!(
            s("postgresql://h?sslmode=x", "n"),
            "postgresql://h/n?sslmode=x"
        );
        assert_eq!(
            s("postgresql://h/?sslmode=x", "n"),
            "postgresql://h/n?sslmode=x"
        );
        assert_eq!(s("postgresql://", "n"), "postgresql:///n");
        assert_eq!(
            url_get_db(b"postgresql:///n").unwrap().as_deref(),
            Some("n")
        );
        assert_eq!(s("mysql://h/a", "a/b?c"), "mysql://h/a%2Fb%3Fc");
        assert_eq!(g("mysql://h/a%2Fb%3Fc").as_deref(), Some("a/b?c"));
        for bad in [
            "myapp",
            "host=h dbname=x",
            "://h/x",
            "1x://h/d",
            "postgresql://h/%zz",
            "mysql://h/%zz",
        ] {
            assert!(url_get_db(bad.as_bytes()).is_err(), "{bad}");
            assert!(url_set_db(bad.as_bytes(), "x").is_err(), "{bad}");
        }
        assert!(url_get_db(b"mysql://h/\xff").is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact(b"host=h password=secret dbname=d"),
            "host=h password=*** dbname=d"
        );
        assert_eq!(
            redact(b"password = 'se cret' user=u"),
            "password = *** user=u"
        );
        assert_eq!(
            redact(b"sslpassword=k password=p"),
            "sslpassword=*** password=***"
        );
        assert_eq!(
            redact(b"postgresql://u:secret@h/db"),
            "postgresql://u:***@h/db"
        );
        assert_eq!(
            redact(b"postgresql://u@h/db?password=secret&x=1"),
            "postgresql://u@h/db?password=***&x=1"
        );
        assert_eq!(redact(b"postgresql://h/db"), "postgresql://h/db");
        assert_eq!(
            redact(b"mysql+pymysql://u:se/cret@h/db"),
            "mysql+pymysql://u:***@h/db"
        );
        assert_eq!(
            redact(b"dbname='postgresql://u:pw@h/x' host=h"),
            "dbname=postgresql://u:***@h/x host=h"
        );
        // Unparsable input is redacted generously.
        for s in [
            &b"host=h password=secret x"[..],
            b"password='secret",
            b"user=u PASSWORD = secret",
            b"postgresql://u:secret@[::1/db",
            b"postgresql://u:sec@ret@h/%zz",
            b"a\0 password=secret",
        ] {
            let r = redact(s);
            assert!(!r.contains("secret") && !r.contains("ret@"), "{r}");
        }
        assert_eq!(redact(b"dbname=x"), "dbname=x");
        assert_eq!(redact(b""), "");
    }

    #[test]
    fn display_is_one_line() {
        assert_eq!(
            RewriteError::Refused("dagz: x".into()).to_string(),
            "dagz: x"
        );
        assert!(RewriteError::Syntax("y".into())
            .to_string()
            .ends_with(": y"));
    }

    // ----------------------------------------------------------------- property tests

    fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                8 => prop::sample::select(b"abcxyz019_-.".to_vec()),
                2 => prop::sample::select(b" \t\n'\\=&?/@:%,#[]+".to_vec()),
                1 => 1u8..=255,
            ],
            0..10,
        )
    }

    const KEYS: &[&str] = &[
        "host",
        "port",
        "user",
        "password",
        "dbname",
        "options",
        "sslmode",
        "application_name",
    ];

    #[derive(Debug, Clone)]
    struct Item {
        key: &'static str,
        val: Vec<u8>,
        quoted: bool,
        extra_escapes: bool,
        pre_eq: usize,
        post_eq: usize,
        sep: Vec<u8>,
    }

    fn item() -> impl Strategy<Value = Item> {
        (
            prop::sample::select(KEYS),
            value_bytes(),
            any::<bool>(),
            any::<bool>(),
            0usize..2,
            0usize..2,
            prop::collection::vec(prop::sample::select(b" \t\n".to_vec()), 0..3),
        )
            .prop_map(
                |(key, val, quoted, extra_escapes, pre_eq, post_eq, sep)| Item {
                    key,
                    val,
                    quoted,
                    extra_escapes,
                    pre_eq,
                    post_eq,
                    sep,
                },
            )
    }

    /// A conninfo built from items, with the raw span of the last dbname value.
    fn build_conninfo(items: &[Item], lead: usize) -> (Vec<u8>, Option<Range<usize>>) {
        let mut s = vec![b' '; lead];
        let mut span = None;
        for (k, it) in items.iter().enumerate() {
            s.extend_from_slice(it.key.as_bytes());
            s.extend(std::iter::repeat_n(b' ', it.pre_eq));
            s.push(b'=');
            s.extend(std::iter::repeat_n(b' ', it.post_eq));
            let start = s.len();
            let quoted = it.quoted || it.val.is_empty();
            if quoted {
                s.extend(conn_quote(&it.val));
            } else {
                for (i, &c) in it.val.iter().enumerate() {
                    if is_space(c)
                        || c == b'\\'
                        || (i == 0 && c == b'\'')
                        || (it.extra_escapes && c == b'a')
                    {
                        s.push(b'\\');
                    }
                    s.push(c);
                }
            }
            if it.key == "dbname" {
                span = Some(start..s.len());
            }
            // Unquoted values need whitespace after them (quoted ones do not).
            if k + 1 < items.len() || !it.sep.is_empty() {
                s.extend_from_slice(&it.sep);
                if !quoted && it.sep.is_empty() {
                    s.push(b' ');
                }
            }
        }
        (s, span)
    }

    fn expected(items: &[Item]) -> BTreeMap<String, Vec<u8>> {
        items
            .iter()
            .map(|i| (i.key.to_owned(), i.val.clone()))
            .collect()
    }

    fn without_db(mut m: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
        m.remove("dbname");
        m
    }

    #[derive(Debug, Clone)]
    struct UriSpec {
        short: bool,
        user: Option<(Vec<u8>, Option<Vec<u8>>)>,
        hosts: Vec<(u8, Option<u16>)>,
        path: Option<Vec<u8>>,
        query: Vec<(&'static str, Vec<u8>)>,
        enc_all: bool,
    }

    fn uri_spec() -> impl Strategy<Value = UriSpec> {
        (
            any::<bool>(),
            prop::option::of((value_bytes(), prop::option::of(value_bytes()))),
            prop::collection::vec((0u8..4, prop::option::of(1u16..9999)), 1..4),
            prop::option::of(value_bytes()),
            prop::collection::vec((prop::sample::select(KEYS), value_bytes()), 0..4),
            any::<bool>(),
        )
            .prop_map(|(short, user, hosts, path, query, enc_all)| UriSpec {
                short,
                user,
                hosts,
                path,
                query,
                enc_all,
            })
    }

    fn enc(v: &[u8], all: bool) -> Vec<u8> {
        if !all {
            return pct_encode(v);
        }
        v.iter()
            .flat_map(|c| format!("%{c:02x}").into_bytes())
            .collect()
    }

    type BuiltUri = (Vec<u8>, BTreeMap<String, Vec<u8>>, Option<Range<usize>>);

    const HOSTS: [&str; 4] = ["", "localhost", "[::1]", "db.example"];

    /// A URI, its expected options and the raw span of the effective dbname.
    fn build_uri(u: &UriSpec) -> BuiltUri {
        let mut s = if u.short {
            b"postgres://".to_vec()
        } else {
            b"postgresql://".to_vec()
        };
        let mut m = BTreeMap::new();
        let mut span = None;
        if let Some((user, pw)) = &u.user {
            s.extend(enc(user, u.enc_all));
            if !user.is_empty() {
                m.insert("user".to_owned(), user.clone());
            }
            if let Some(pw) = pw {
                s.push(b':');
                s.extend(enc(pw, u.enc_all));
                if !pw.is_empty() {
                    m.insert("password".to_owned(), pw.clone());
                }
            }
            s.push(b'@');
        }
        let (mut hosts, mut ports) = (Vec::new(), Vec::new());
        for (k, (h, p)) in u.hosts.iter().enumerate() {
            if k > 0 {
                s.push(b',');
                hosts.push(b',');
                ports.push(b',');
            }
            let h = HOSTS[usize::from(*h % 4)];
            s.extend_from_slice(h.as_bytes());
            hosts.extend_from_slice(h.trim_start_matches('[').trim_end_matches(']').as_bytes());
            if let Some(p) = p {
                s.extend(format!(":{p}").into_bytes());
                ports.extend(p.to_string().into_bytes());
            }
        }
        if !hosts.is_empty() {
            m.insert("host".to_owned(), hosts);
        }
        if !ports.is_empty() {
            m.insert("port".to_owned(), ports);
        }
        if let Some(path) = &u.path {
            s.push(b'/');
            let start = s.len();
            s.extend(enc(path, u.enc_all));
            if !path.is_empty() {
                m.insert("dbname".to_owned(), path.clone());
                span = Some(start..s.len());
            }
        }
        for (k, (key, val)) in u.query.iter().enumerate() {
            s.push(if k == 0 { b'?' } else { b'&' });
            s.extend_from_slice(key.as_bytes());
            s.push(b'=');
            let start = s.len();
            s.extend(enc(val, u.enc_all));
            m.insert((*key).to_owned(), val.clone());
            if *key == "dbname" {
                span = Some(start..s.len());
            }
        }
        (s, m, span)
    }

    fn jw_env() -> Env {
        Env::new().var("PGUSER", "fallbackuser")
    }

    /// The checks shared by conninfo and URI properties.
    fn check_rewrite(
        s: &[u8],
        want: &BTreeMap<String, Vec<u8>>,
        span: Option<Range<usize>>,
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(&opts(s), want);
        let effective = match (want.get("dbname"), want.get("user")) {
            (Some(d), _) if !d.is_empty() => d.clone(),
            (_, Some(u)) if !u.is_empty() => u.clone(),
            // An explicitly empty user means the OS user, PGUSER is not consulted.
            (_, Some(_)) => b"osuser".to_vec(),
            (_, None) => b"fallbackuser".to_vec(),
        };
        let res = rewrite_conninfo(s, &jw_env(), &mut jw03);
        let Ok(name) = String::from_utf8(effective) else {
            prop_assert!(matches!(res, Err(RewriteError::Syntax(_))));
            return Ok(());
        };
        let out = res.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        if name.ends_with("_jw03") {
            prop_assert_eq!(out, None);
            return Ok(());
        }
        let out = out.ok_or_else(|| TestCaseError::fail("not rewritten"))?;
        let new = format!("{name}_jw03");
        let got = opts(&out);
        prop_assert_eq!(got.get("dbname").map(Vec::as_slice), Some(new.as_bytes()));
        prop_assert_eq!(without_db(got), without_db(want.clone()));
        match span {
            Some(r) if want.get("dbname").is_some_and(|d| !d.is_empty()) => {
                prop_assert!(out.starts_with(&s[..r.start]));
                prop_assert!(out.ends_with(&s[r.end..]));
            }
            _ => {
                let w = s;
                prop_assert!(
                    out.starts_with(w) || out.ends_with(w) || want.contains_key("dbname"),
                    "{:?}",
                    lossy(&out)
                );
            }
        }
        // Idempotent.
        prop_assert_eq!(rewrite_conninfo(&out, &jw_env(), &mut jw03), Ok(None));
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn conninfo_rewrite_properties(items in prop::collection::vec(item(), 0..6), lead in 0usize..2) {
            let (s, span) = build_conninfo(&items, lead);
            check_rewrite(&s, &expected(&items), span)?;
        }

        #[test]
        fn uri_rewrite_properties(u in uri_spec()) {
            let (s, want, span) = build_uri(&u);
            check_rewrite(&s, &want, span)?;
            // The generic URL functions agree with libpq's reading.
            match want.get("dbname").filter(|d| !d.is_empty()).map(|d| String::from_utf8(d.clone())) {
                Some(Ok(d)) => {
                    prop_assert_eq!(url_get_db(&s).unwrap(), Some(d));
                    let out = url_set_db(&s, "new db").unwrap();
                    prop_assert_eq!(url_get_db(&out).unwrap(), Some("new db".to_owned()));
                    prop_assert_eq!(without_db(opts(&out)), without_db(want.clone()));
                }
                Some(Err(_)) => prop_assert!(url_get_db(&s).is_err()),
                None => {
                    prop_assert_eq!(url_get_db(&s).unwrap(), None);
                    let out = url_set_db(&s, "n").unwrap();
                    prop_assert_eq!(url_get_db(&out).unwrap(), Some("n".to_owned()));
                }
            }
            if let Some(pw) = want.get("password").filter(|p| p.len() > 3) {
                let r = redact(&s);
                let enc_pw = enc(pw, u.enc_all);
                prop_assert!(!r.as_bytes().windows(enc_pw.len()).any(|w| w == &enc_pw[..]) || lossy(&s).matches(&*lossy(&enc_pw)).count() > 1);
            }
        }

        #[test]
        fn params_rewrite_properties(items in prop::collection::vec(item(), 0..5), nulls in prop::collection::vec(any::<bool>(), 5), expand in any::<bool>()) {
            let list: Vec<(&[u8], Option<&[u8]>)> = items
                .iter()
                .zip(&nulls)
                .map(|(i, n)| (i.key.as_bytes(), (!n).then_some(i.val.as_slice())))
                .collect();
            if let Ok(Some(out)) = rewrite_params(&list, expand, &jw_env(), &mut jw03) {
                let b: Vec<(&[u8], Option<&[u8]>)> = out.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
                prop_assert_eq!(rewrite_params(&b, expand, &jw_env(), &mut jw03), Ok(None));
                // Only the dbname entries change, plus at most one appended.
                prop_assert!(out.len() == list.len() || out.len() == list.len() + 1);
                for ((k, v), (k2, v2)) in list.iter().zip(&out) {
                    prop_assert_eq!(*k, k2.as_slice());
                    if *k != b"dbname" {
                        prop_assert_eq!(*v, v2.as_deref());
                    }
                }
            }
        }

        #[test]
        fn conninfo_password_is_redacted(items in prop::collection::vec(item(), 0..4), pw in "[a-z]{4,10}", at_i in 0usize..5) {
            let mut items = items;
            let secret = format!("SECRET{pw}");
            let base = Item { key: "password", val: secret.clone().into_bytes(), quoted: false, extra_escapes: false, pre_eq: 0, post_eq: 0, sep: vec![b' '] };
            items.insert(at_i.min(items.len()), base);
            let (s, _) = build_conninfo(&items, 0);
            let r = redact(&s);
            prop_assert!(!r.contains(&secret), "{}", r);
        }

        #[test]
        fn no_panic_on_arbitrary_bytes(s in prop::collection::vec(any::<u8>(), 0..60), t in prop::collection::vec(prop::sample::select(b"postgresql:/@[]:,?&=%'\\ abd".to_vec()), 0..40)) {
            for input in [&s, &t] {
                let env = jw_env().var("PGSERVICE", "x").file("/etc/postgresql-common/pg_service.conf", &String::from_utf8_lossy(input));
                let _ = rewrite_conninfo(input, &env, &mut jw03);
                let _ = rewrite_conninfo(input, &jw_env(), &mut jw03);
                let _ = rewrite_setdb(Some(input), Some(input), &jw_env(), &mut jw03);
                let _ = rewrite_setdb(None, Some(input), &env, &mut jw03);
                let p: Vec<(&[u8], Option<&[u8]>)> = vec![(b"dbname", Some(input)), (input, Some(input)), (b"user", None)];
                let _ = rewrite_params(&p, true, &jw_env(), &mut jw03);
                let _ = rewrite_params(&p, false, &env, &mut jw03);
                let _ = url_get_db(input);
                let _ = url_set_db(input, "x y");
                let _ = parse_options(input);
                let _ = redact(input);
                let mut prefixed = b"postgresql://".to_vec();
                prefixed.extend_from_slice(input);
                let _ = rewrite_conninfo(&prefixed, &jw_env(), &mut jw03);
                let _ = url_set_db(&prefixed, "x");
                let _ = redact(&prefixed);
            }
        }
    }
}
