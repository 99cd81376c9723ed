//! The tokenizer: libpq's parsers, reporting where each value's raw bytes are.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
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
pub(super) struct Tok<'a> {
    pub(super) key: Cow<'a, [u8]>,
    pub(super) val: Cow<'a, [u8]>,
    /// The raw bytes of the value in the input (with quotes / escapes / percent-encoding).
    pub(super) span: Range<usize>,
    pub(super) kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) span: Range<usize>,
    pub(super) kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Shape {
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
pub(super) fn scan<'a>(
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

fn skip_spaces(s: &[u8], mut i: usize) -> usize {
    while at(s, i).is_some_and(is_space) {
        i += 1;
    }
    i
}

/// The keyword starting at `i`: up to '=' or whitespace (then blanks are skipped and '=' must
/// follow). Returns the keyword and the index just after its '='.
fn scan_keyword(s: &[u8], start: usize) -> Result<(&[u8], usize), RewriteError> {
    let mut i = start;
    let mut name_end = None;
    while let Some(c) = at(s, i) {
        if c == b'=' {
            break;
        }
        if is_space(c) {
            name_end = Some(i);
            i = skip_spaces(s, i + 1);
            break;
        }
        i += 1;
    }
    let key = sub(s, start..name_end.unwrap_or(i));
    if at(s, i) != Some(b'=') {
        return Err(syntax(format!(
            "missing \"=\" after {} in the connection string",
            describe_keyword(key, start)
        )));
    }
    if key.is_empty() {
        return Err(syntax(format!(
            "empty keyword at byte {start} in the connection string"
        )));
    }
    Ok((key, i + 1))
}

/// A quoted value `'…'` whose opening quote is at `vstart`: (content range, index after it).
fn scan_quoted(
    s: &[u8],
    vstart: usize,
    key: &[u8],
    key_at: usize,
) -> Result<(Range<usize>, usize), RewriteError> {
    let mut i = vstart + 1;
    loop {
        match at(s, i) {
            None => {
                return Err(syntax(format!(
                    "unterminated quoted string (the value of {}) in the connection string",
                    describe_keyword(key, key_at)
                )))
            }
            Some(b'\\') => i += 2,
            Some(b'\'') => return Ok((vstart + 1..i, i + 1)),
            Some(_) => i += 1,
        }
    }
}

/// An unquoted value starting at `vstart`: (its end, index after it, ends in a lone backslash,
/// holds a backslash).
fn scan_unquoted(s: &[u8], vstart: usize) -> (usize, usize, bool, bool) {
    let n = s.len();
    let mut i = vstart;
    let (mut dangling, mut escaped) = (false, false);
    loop {
        match at(s, i) {
            None => return (i.min(n), i.min(n), dangling, escaped),
            Some(c) if is_space(c) => return (i, i + 1, dangling, escaped),
            Some(b'\\') => {
                escaped = true;
                if i + 1 >= n {
                    dangling = true;
                }
                i = (i + 2).min(n);
            }
            Some(_) => i += 1,
        }
    }
}

/// libpq's `conninfo_parse`.
pub(super) fn scan_conninfo<'a>(
    s: &'a [u8],
    sink: &mut dyn FnMut(Tok<'a>),
) -> Result<Shape, RewriteError> {
    let n = s.len();
    let mut i = skip_spaces(s, 0);
    let mut append_safe = true;
    while i < n {
        let key_at = i;
        let (key, after_eq) = scan_keyword(s, i)?;
        let vstart = skip_spaces(s, after_eq);
        if at(s, vstart) == Some(b'\'') {
            let (content, next) = scan_quoted(s, vstart, key, key_at)?;
            append_safe = true;
            sink(Tok {
                key: Cow::Borrowed(key),
                val: unescape(sub(s, content)),
                span: vstart..next,
                kind: Kind::Conn { quoted: true },
            });
            i = next;
        } else {
            let (vend, next, dangling, escaped) = scan_unquoted(s, vstart);
            let raw = sub(s, vstart..vend);
            // A value that runs to the end of the input would swallow an appended " dbname=…" if
            // it is empty (blanks after '=' are skipped) or ends in a lone backslash.
            append_safe = !(vend == n && (vend == vstart || dangling));
            sink(Tok {
                key: Cow::Borrowed(key),
                val: if escaped {
                    unescape(raw)
                } else {
                    Cow::Borrowed(raw)
                },
                span: vstart..vend,
                kind: Kind::Conn { quoted: false },
            });
            i = next;
        }
        i = skip_spaces(s, i);
    }
    Ok(Shape::Conn { append_safe })
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
