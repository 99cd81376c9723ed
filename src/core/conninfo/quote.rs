//! Decoding and encoding values: percent-encoding (URIs), backslash escapes and quotes (conninfo).

use super::*;

pub(super) fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// libpq's `conninfo_uri_decode`. `base` is the offset of `raw` in the input (for messages).
pub(super) fn pct_decode(raw: &[u8], base: usize) -> Result<Cow<'_, [u8]>, RewriteError> {
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
pub(super) fn pct_encode(v: &[u8]) -> Vec<u8> {
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
pub(super) fn unescape(raw: &[u8]) -> Cow<'_, [u8]> {
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

pub(super) fn needs_quotes(v: &[u8]) -> bool {
    v.is_empty() || v.iter().any(|&c| is_space(c) || c == b'\'' || c == b'\\')
}

/// `'…'` with `\` and `'` escaped.
pub(super) fn conn_quote(v: &[u8]) -> Vec<u8> {
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

pub(super) fn conn_value(v: &[u8], keep_quoted: bool) -> Vec<u8> {
    if keep_quoted || needs_quotes(v) {
        conn_quote(v)
    } else {
        v.to_vec()
    }
}

/// A database name as a keyword-array / `PQsetdbLogin` value that is never expanded as a
/// connection string: as is, or `dbname='…'` when it would look like one.
pub(super) fn literal_dbname(new: &str) -> Vec<u8> {
    if recognized_connection_string(new.as_bytes()) {
        let mut out = b"dbname=".to_vec();
        out.extend(conn_quote(new.as_bytes()));
        out
    } else {
        new.as_bytes().to_vec()
    }
}
