//! Small byte helpers (never panic).

use super::*;

/// C `isspace` in the C locale.
pub(super) fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

pub(super) fn at(s: &[u8], i: usize) -> Option<u8> {
    s.get(i).copied()
}

pub(super) fn sub(s: &[u8], r: Range<usize>) -> &[u8] {
    s.get(r).unwrap_or_default()
}

pub(super) fn splice(s: &[u8], r: Range<usize>, with: &[u8]) -> Vec<u8> {
    let start = r.start.min(s.len());
    let end = r.end.clamp(start, s.len());
    let mut out = Vec::with_capacity(s.len() + with.len());
    out.extend_from_slice(sub(s, 0..start));
    out.extend_from_slice(with);
    out.extend_from_slice(sub(s, end..s.len()));
    out
}

pub(super) fn no_nul(s: &[u8], what: &str) -> Result<(), RewriteError> {
    if s.contains(&0) {
        return Err(syntax(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

pub(super) fn lossy(s: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(s)
}
