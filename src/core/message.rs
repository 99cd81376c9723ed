//! The `dagz:` prefix of every message a user sees, added and stripped here only. Messages are
//! built bare inside the shim; the prefix is added where they leave it (an error of the C ABI, a
//! refused connect's libpq error, a MySQL handle's error text), and stripped from text that comes
//! back in (the Python callback's message).

pub const PREFIX: &str = "dagz: ";

/// `msg` without a leading `dagz:` (and the space after it).
pub fn bare(msg: &str) -> &str {
    match msg.strip_prefix("dagz:") {
        Some(rest) => rest.strip_prefix(' ').unwrap_or(rest),
        None => msg,
    }
}

/// `dagz: msg`, never with the prefix twice.
pub fn prefixed(msg: &str) -> String {
    let mut out = String::with_capacity(PREFIX.len() + msg.len());
    out.push_str(PREFIX);
    out.push_str(bare(msg));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_once() {
        assert_eq!(prefixed("x"), "dagz: x");
        assert_eq!(prefixed("dagz: x"), "dagz: x");
        assert_eq!(prefixed("dagz:x"), "dagz: x");
        assert_eq!(bare("dagz: x"), "x");
        assert_eq!(bare("x"), "x");
        assert_eq!(bare("dagzx"), "dagzx");
    }
}
