//! Redaction of passwords for log lines.

use super::*;

pub(super) const MASK: &[u8] = b"***";

/// Replacement spans for the secrets of a connection string or URL, or `None` if it does not parse.
pub(super) fn secret_spans(s: &[u8]) -> Option<Vec<(Range<usize>, Vec<u8>)>> {
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

pub(super) fn looks_like_url(s: &[u8]) -> bool {
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
pub(super) fn heuristic_spans(s: &[u8]) -> Vec<(Range<usize>, Vec<u8>)> {
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
