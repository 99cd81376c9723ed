//! Recognising a statement that is exactly `USE name` (SPEC §2, MySQL) and rewriting its name.
//! Pure and allocation-free on the rejecting path: every `mysql_query` goes through here, so a
//! statement that is not a `USE` must be turned away within a few byte comparisons.

/// A recognised `USE` statement: the database name and the byte range it occupies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseStmt {
    pub name: String,
    /// Byte range of the name token (including backticks, if any) in the statement.
    pub start: usize,
    pub end: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// Characters of an unquoted MySQL identifier (ASCII letters, digits, `_`, `$`, and any byte
/// ≥ 0x80 of a UTF-8 identifier).
fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// `Some` when `stmt` is only `USE name` — any case, optional backticks (with `` `` `` as an escaped
/// backtick), surrounding whitespace, an optional trailing `;`. Anything else is `None`.
pub fn parse_use(stmt: &[u8]) -> Option<UseStmt> {
    let mut i = 0;
    while i < stmt.len() && is_space(stmt[i]) {
        i += 1;
    }
    // Fast rejection: the first non-space byte must be `u`/`U`.
    if !matches!(stmt.get(i), Some(b'u' | b'U')) {
        return None;
    }
    let kw = stmt.get(i..i + 3)?;
    if !kw.eq_ignore_ascii_case(b"use") {
        return None;
    }
    i += 3;
    let ws = i;
    while i < stmt.len() && is_space(stmt[i]) {
        i += 1;
    }
    let start = i;
    let name = if stmt.get(i) == Some(&b'`') {
        // "USE`db`" is valid MySQL too: a quoted identifier needs no space before it.
        let mut name = Vec::new();
        i += 1;
        loop {
            match stmt.get(i) {
                None => return None,
                Some(b'`') if stmt.get(i + 1) == Some(&b'`') => {
                    name.push(b'`');
                    i += 2;
                }
                Some(b'`') => {
                    i += 1;
                    break;
                }
                Some(&b) => {
                    name.push(b);
                    i += 1;
                }
            }
        }
        name
    } else {
        if i == ws {
            return None; // "USER…", "USEx": not a USE statement
        }
        let s = i;
        while i < stmt.len() && is_ident(stmt[i]) {
            i += 1;
        }
        stmt[s..i].to_vec()
    };
    let end = i;
    while i < stmt.len() && is_space(stmt[i]) {
        i += 1;
    }
    if stmt.get(i) == Some(&b';') {
        i += 1;
        while i < stmt.len() && is_space(stmt[i]) {
            i += 1;
        }
    }
    if i != stmt.len() || name.is_empty() {
        return None;
    }
    Some(UseStmt {
        name: String::from_utf8(name).ok()?,
        start,
        end,
    })
}

/// `stmt` with the name of the recognised `u` replaced by `new` (backtick-quoted), every other byte
/// kept.
pub fn replace_use(stmt: &[u8], u: &UseStmt, new: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(stmt.len() + new.len() + 4);
    out.extend_from_slice(&stmt[..u.start]);
    out.push(b'`');
    out.extend_from_slice(new.replace('`', "``").as_bytes());
    out.push(b'`');
    out.extend_from_slice(&stmt[u.end..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> Option<String> {
        parse_use(s.as_bytes()).map(|u| u.name)
    }

    #[test]
    fn recognises_use_forms() {
        assert_eq!(name("USE myapp"), Some("myapp".into()));
        assert_eq!(name("use myapp;"), Some("myapp".into()));
        assert_eq!(name("  UsE \t `my app` ; \n"), Some("my app".into()));
        assert_eq!(name("USE `a``b`"), Some("a`b".into()));
        assert_eq!(name("USE`myapp`"), Some("myapp".into()));
        assert_eq!(name("use my$app_1"), Some("my$app_1".into()));
    }

    #[test]
    fn rejects_everything_else() {
        for s in [
            "SELECT 'USE myapp'",
            "USER myapp",
            "USEmyapp",
            "USE",
            "USE ;",
            "USE myapp extra",
            "USE myapp; SELECT 1",
            "USE `unterminated",
            "USE ``",
            "/* c */ USE myapp",
            "",
        ] {
            assert_eq!(name(s), None, "{s:?}");
        }
    }

    #[test]
    fn replace_keeps_other_bytes() {
        let s = b"  use `myapp` ;  ";
        let u = parse_use(s).unwrap();
        assert_eq!(
            replace_use(s, &u, "myapp_jw03"),
            b"  use `myapp_jw03` ;  ".to_vec()
        );
        let s = b"USE myapp";
        let u = parse_use(s).unwrap();
        assert_eq!(replace_use(s, &u, "a`b"), b"USE `a``b`".to_vec());
    }

    proptest! {
        #[test]
        fn never_panics(s in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_use(&s);
        }

        #[test]
        fn rewrite_round_trips(pre in "[ \t\n]{0,3}", kw in "[uU][sS][eE]", sp in "[ \t]{1,3}",
                               db in "[a-zA-Z0-9_$]{1,20}", post in "[ ]{0,2};?[ ]{0,2}",
                               new in "[a-zA-Z0-9_` ]{1,20}") {
            let stmt = format!("{pre}{kw}{sp}{db}{post}");
            let u = parse_use(stmt.as_bytes()).unwrap();
            prop_assert_eq!(&u.name, &db);
            let out = replace_use(stmt.as_bytes(), &u, &new);
            let again = parse_use(&out).unwrap();
            prop_assert_eq!(again.name, new);
            let head = format!("{pre}{kw}{sp}");
            prop_assert!(out.starts_with(head.as_bytes()));
            prop_assert!(out.ends_with(post.as_bytes()));
        }

        #[test]
        fn non_u_first_byte_is_rejected(s in "[^uU \t\n\r\x0b\x0c].*") {
            prop_assert_eq!(parse_use(s.as_bytes()), None);
        }
    }
}
