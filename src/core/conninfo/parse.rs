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

/// libpq's `conninfo_parse`.
pub(super) fn scan_conninfo<'a>(
    s: &'a [u8],
    sink: &mut dyn FnMut(Tok<'a>),
) -> Result<Shape, RewriteError> {
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
