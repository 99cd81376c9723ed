use super::*;
use proptest::prelude::*;

fn class(s: &str) -> Class {
    classify(s.as_bytes())
}

fn name(s: &str) -> Option<String> {
    match class(s) {
        Class::Use(u) => Some(u.name),
        _ => None,
    }
}

fn refused(s: &str) -> Option<(Reason, Option<String>)> {
    match classify(s.as_bytes()) {
        Class::Refuse { reason, name } => Some((reason, name)),
        _ => None,
    }
}

fn rewritten(s: &[u8], new: &str) -> Vec<u8> {
    match classify(s) {
        Class::Use(u) => rewrite(s, &u, new),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(s)),
    }
}

#[test]
fn recognises_use_forms() {
    for (s, n) in [
        ("USE myapp", "myapp"),
        ("use myapp;", "myapp"),
        ("  UsE \t `my app` ; \n", "my app"),
        ("USE `a``b`", "a`b"),
        ("USE`myapp`", "myapp"),
        ("use my$app_1", "my$app_1"),
        ("USE 1app", "1app"),
    ] {
        assert_eq!(name(s), Some(n.to_owned()), "{s:?}");
    }
}

/// Issue 12: each form that reached the base database is rewritten, every other byte kept.
#[test]
fn issue12_comment_and_semicolon_forms_are_rewritten() {
    for (s, out) in [
        ("/* c */ USE myapp", "/* c */ USE `w`"),
        ("USE myapp -- x", "USE `w` -- x"),
        ("USE myapp # x", "USE `w` # x"),
        ("USE myapp/* c */", "USE `w`/* c */"),
        ("USE /* c */ myapp", "USE /* c */ `w`"),
        ("USE myapp;;", "USE `w`;;"),
        ("USE myapp --", "USE `w` --"),
        ("USE myapp#x", "USE `w`#x"),
        ("; USE myapp ; ;", "; USE `w` ; ;"),
        ("USE myapp /*!*/", "USE `w` /*!*/"),
        ("USE myapp\0", "USE `w`\0"),
        (
            "/*+ hint */USE\nmyapp\n-- x\n",
            "/*+ hint */USE\n`w`\n-- x\n",
        ),
    ] {
        assert_eq!(rewritten(s.as_bytes(), "w"), out.as_bytes(), "{s:?}");
    }
}

#[test]
fn issue12_dynamic_and_multi_statement_forms_are_refused() {
    let my = Some("myapp".to_owned());
    for (s, reason, n) in [
        (
            "EXECUTE IMMEDIATE 'USE myapp'",
            Reason::InDynamicSql,
            my.clone(),
        ),
        (
            "PREPARE s FROM 'USE myapp'",
            Reason::InDynamicSql,
            my.clone(),
        ),
        (
            "prepare `s` from \"USE myapp\"",
            Reason::InDynamicSql,
            my.clone(),
        ),
        (
            "EXECUTE IMMEDIATE 'US' 'E myapp'",
            Reason::InDynamicSql,
            my.clone(),
        ),
        (
            "EXECUTE IMMEDIATE _utf8mb4'USE myapp'",
            Reason::InDynamicSql,
            my.clone(),
        ),
        (
            "EXECUTE IMMEDIATE 'U\\SE myapp'",
            Reason::ModeDependent,
            None,
        ),
        (
            "EXECUTE IMMEDIATE 'USE myapp; SELECT 1'",
            Reason::InDynamicSql,
            my.clone(),
        ),
        (
            "BEGIN NOT ATOMIC EXECUTE IMMEDIATE 'USE myapp'; END",
            Reason::InDynamicSql,
            my.clone(),
        ),
        ("EXECUTE IMMEDIATE @q", Reason::DynamicSource, None),
        ("PREPARE s FROM @q", Reason::DynamicSource, None),
        (
            "EXECUTE IMMEDIATE CONCAT('U', 'SE x')",
            Reason::DynamicSource,
            None,
        ),
        (
            "EXECUTE IMMEDIATE X'555345206d7973716c'",
            Reason::DynamicSource,
            None,
        ),
        ("USE myapp; SELECT 1", Reason::MultiStatement, my.clone()),
        ("SELECT 1; USE myapp", Reason::MultiStatement, my.clone()),
        ("USE a; USE b", Reason::MultiStatement, None),
        ("USE myapp extra", Reason::Unparsable, my.clone()),
        ("USE myapp.x", Reason::Unparsable, my.clone()),
        ("USE 'myapp'", Reason::Unparsable, None),
        ("USE \"myapp\"", Reason::Unparsable, None),
        ("USE ``", Reason::Unparsable, None),
        ("USE", Reason::Unparsable, None),
        ("USE myapp /* open", Reason::Unparsable, my.clone()),
        ("USE myapp\0\0", Reason::Unparsable, my.clone()),
        ("/*!USE myapp*/", Reason::ExecComment, my.clone()),
        ("/*!USE*/ myapp", Reason::ExecComment, my.clone()),
        ("/*!50000 USE myapp*/", Reason::ModeDependent, None),
        ("/*M!USE myapp*/", Reason::ModeDependent, None),
        ("SELECT 'a\\'; USE myapp; -- '", Reason::ModeDependent, None),
    ] {
        assert_eq!(refused(s), Some((reason, n)), "{s:?}");
    }
}

#[test]
fn issue12_statements_that_mention_use_are_not_flagged() {
    for s in [
        "SELECT 'USE myapp'",
        "SELECT \"USE myapp\"",
        "/* USE x */ SELECT 1",
        "SELECT 1 -- USE x",
        "SELECT 1 # USE x",
        "SELECT * FROM users",
        "SELECT * FROM `use`",
        "SELECT t.use FROM t",
        "SELECT * FROM t USE INDEX (i) WHERE x = 1",
        "SELECT * FROM t use key (i)",
        "SELECT @use, @@use, @'use'",
        "UPDATE users SET used = 1",
        "EXECUTE s",
        "EXECUTE IMMEDIATE 'SELECT 1'",
        "PREPARE s FROM 'SELECT ''USE x'''",
        "XA PREPARE 'xid'",
        "/*!40101 SET NAMES utf8 */",
        "INSERT INTO t VALUES ('prepare', 'execute immediate', 'use')",
        "USEmyapp",
        "USER myapp",
        "",
    ] {
        assert_eq!(class(s), Class::NotUse, "{s:?}");
    }
}

/// Statements an application sends (the rows of bench/hook_cost.c): none can change the
/// database, all take the first-keyword fast path (issue 12: ≤ 100 instructions in the hook),
/// and the full classifier agrees they are harmless.
const REALISTIC: [&str; 10] = [
    "SELECT id, name FROM t WHERE id = 1",
    "SELECT id, email FROM users WHERE id = 42",
    "SELECT `auth_user`.`id`, `auth_user`.`password`, `auth_user`.`last_login`, \
     `auth_user`.`is_superuser`, `auth_user`.`username`, `auth_user`.`email` FROM `auth_user` \
     WHERE `auth_user`.`username` = 'user_17' LIMIT 21",
    "INSERT INTO payments (user_id, product_id, amount, status) VALUES (17, 4, 19.99, 'pending')",
    "UPDATE products SET price = 12.5, updated_at = NOW() WHERE id = 3",
    "INSERT INTO updates (user_id, product_id, body) VALUES (5, 9, 'Please use the new \
     endpoint: users who update products should use it, reuse it and prepare their payments \
     with it. Unused keys expire.')",
    "SELECT * FROM users WHERE user_id = 7;",
    "delete from `payments` where `user_id` in (1, 2)",
    "REPLACE INTO updates VALUES (1, 'use')",
    "  /* app:orders */ select * from products -- use x\n",
];

#[test]
fn issue12_realistic_statements_take_the_fast_path_and_stay_not_use() {
    for s in REALISTIC {
        assert!(safe_single_statement(s.as_bytes()), "{s:?}");
        assert!(not_use(s.as_bytes()), "{s:?}");
        assert_eq!(classify(s.as_bytes()), Class::NotUse, "{s:?}");
        assert_eq!(classify_full(s.as_bytes()), Class::NotUse, "{s:?}");
    }
    // Was refused (mode-dependent) before the first-keyword path: one SELECT in every reading
    // (under NO_BACKSLASH_ESCAPES an unterminated string, a syntax error).
    assert_eq!(class("SELECT 'a\\'' , 'USE b'"), Class::NotUse);
    // A `;` inside a literal: not decided by the first keyword alone, still not a USE.
    let s =
        "UPDATE updates SET body = 'use it; then update users; prepare payments' WHERE user_id = 5";
    assert!(!safe_single_statement(s.as_bytes()));
    assert_eq!(classify(s.as_bytes()), Class::NotUse);
}

/// The first-keyword path never lets a second statement, or a statement behind an executable
/// comment, through.
#[test]
fn issue12_fast_path_does_not_hide_a_later_use() {
    let my = Some("myapp".to_owned());
    for (s, reason, n) in [
        (
            "SELECT * FROM users; USE myapp",
            Reason::MultiStatement,
            my.clone(),
        ),
        (
            "SELECT * FROM users;USE myapp;",
            Reason::MultiStatement,
            my.clone(),
        ),
        (
            "UPDATE users SET a = 1 ;\n USE myapp",
            Reason::MultiStatement,
            my.clone(),
        ),
        (
            "INSERT INTO t VALUES ('x;'); USE myapp",
            Reason::MultiStatement,
            my.clone(),
        ),
        (
            "DELETE FROM t; EXECUTE IMMEDIATE 'USE myapp'",
            Reason::InDynamicSql,
            my.clone(),
        ),
        (
            "SELECT 1; PREPARE s FROM 'USE myapp'",
            Reason::InDynamicSql,
            my.clone(),
        ),
        (
            "SELECT 1 /*!; USE myapp */",
            Reason::MultiStatement,
            my.clone(),
        ),
        ("/*!USE myapp*/ SELECT 1", Reason::Unparsable, my.clone()),
        ("/*M!USE myapp*/ SELECT 1", Reason::ModeDependent, None),
        ("SELECT 'a\\'; USE myapp; -- '", Reason::ModeDependent, None),
    ] {
        assert!(!not_use(s.as_bytes()), "{s:?}");
        assert_eq!(refused(s), Some((reason, n)), "{s:?}");
    }
    for s in ["/* c */ SELECTED", "SELECTX 1", "(SELECT 1)", "SELECT_1"] {
        assert!(!safe_single_statement(s.as_bytes()), "{s:?}");
    }
    for s in [
        "SELECT 1 /*! */",
        "select 1",
        "Select\t1",
        "#x\nSELECT 1",
        "-- x\nINSERT INTO t VALUES (1)",
        "delete",
    ] {
        assert!(safe_single_statement(s.as_bytes()), "{s:?}");
    }
}

fn target(db: Option<&str>, name: &str) -> CallTarget {
    CallTarget {
        db: db.map(|d| d.as_bytes().to_vec()),
        name: name.as_bytes().to_vec(),
    }
}

/// Issue 12: the procedures a statement calls, whose bodies the hook reads before sending it.
#[test]
fn issue12_call_targets() {
    for (s, want) in [
        ("CALL p()", vec![target(None, "p")]),
        (
            "call `my db`.`p q`(1, 'x')",
            vec![target(Some("my db"), "p q")],
        ),
        ("SELECT 1; CALL p", vec![target(None, "p")]),
        (
            "BEGIN NOT ATOMIC CALL a(); CALL b.c(); END",
            vec![target(None, "a"), target(Some("b"), "c")],
        ),
        ("/* c */ CALL p() -- x", vec![target(None, "p")]),
        ("CALL", vec![target(None, "")]),
        ("SELECT 'CALL p()'", vec![]),
        ("SELECT t.call FROM t", vec![]),
        ("SELECT * FROM recall", vec![]),
    ] {
        assert_eq!(call_targets(s.as_bytes()), want, "{s:?}");
        // The quick filters never hide one.
        assert!(want.is_empty() || may_change_db(s.as_bytes()), "{s:?}");
        assert!(want.is_empty() || has_call_word(s.as_bytes()), "{s:?}");
    }
    // A CALL in dynamic SQL: its body is not read, so it is refused.
    assert_eq!(
        refused("EXECUTE IMMEDIATE 'CALL p()'"),
        Some((Reason::CallInDynamicSql, None))
    );
    assert_eq!(class("CALL p()"), Class::NotUse); // the hook reads the body
}

#[test]
fn rewrite_quotes_the_new_name() {
    assert_eq!(rewritten(b"USE myapp", "a`b"), b"USE `a``b`");
    assert_eq!(
        rewritten(b"  use `myapp` ;  ", "myapp_jw03"),
        b"  use `myapp_jw03` ;  "
    );
}

#[test]
fn quick_filter_boundaries() {
    for s in [
        "use",
        "x USE",
        "/*!50700USE",
        "EXECUTE",
        "'prepare'",
        "a.use",
    ] {
        assert!(may_change_db(s.as_bytes()), "{s:?}");
    }
    for s in [
        "users",
        "reuse",
        "xuse",
        "executed",
        "preparer",
        "SELECT id FROM t",
        "_use",
    ] {
        assert!(!may_change_db(s.as_bytes()), "{s:?}");
    }
    let long = format!("{}USE x", "SELECT 1 ".repeat(7));
    assert!(may_change_db(long.as_bytes()));
}

/// [`classify`] equals [`classify_full`], except for a statement the first-keyword path passes:
/// then `NotUse`, with no `USE`/`EXECUTE`/`PREPARE` word after its first `;` (the words of the
/// first statement, such as `SELECT 1 USE x`, a syntax error on the server, are not looked at).
fn same_or_first_keyword(s: &[u8]) -> Result<(), TestCaseError> {
    if !safe_single_statement(s) {
        prop_assert_eq!(
            classify(s),
            classify_full(s),
            "{:?}",
            String::from_utf8_lossy(s)
        );
        return Ok(());
    }
    prop_assert_eq!(classify(s), Class::NotUse);
    let end = first_keyword_end(s).unwrap_or(0);
    if let Some(p) = s[end..].iter().position(|&b| b == b';') {
        prop_assert!(
            !may_change_db(&s[end + p..]),
            "{:?}",
            String::from_utf8_lossy(s)
        );
    }
    Ok(())
}

/// Statements built from the pieces that matter to the lexer.
fn sqlish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"USE "[..]),
        Just(&b"use"[..]),
        Just(&b"EXECUTE IMMEDIATE "[..]),
        Just(&b"PREPARE s FROM "[..]),
        Just(&b"'"[..]),
        Just(&b"\""[..]),
        Just(&b"`"[..]),
        Just(&b"\\"[..]),
        Just(&b";"[..]),
        Just(&b"/*"[..]),
        Just(&b"*/"[..]),
        Just(&b"/*!"[..]),
        Just(&b"/*!50000"[..]),
        Just(&b"-- "[..]),
        Just(&b"#"[..]),
        Just(&b"\n"[..]),
        Just(&b" "[..]),
        Just(&b"."[..]),
        Just(&b"@"[..]),
        Just(&b"myapp"[..]),
        Just(&b"INDEX"[..]),
        Just(&b"SELECT 1"[..]),
        Just(&b"\0"[..]),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn ws() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(" ".to_owned()),
            Just("\t\n".to_owned()),
            Just("/* c */".to_owned()),
            Just("/**/".to_owned()),
        ],
        0..3,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn never_panics(s in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = classify_full(&s);
        let _ = classify(&s);
    }

    #[test]
    fn quick_filter_never_changes_the_result(s in sqlish()) {
        same_or_first_keyword(&s)?;
    }

    #[test]
    fn quick_filter_on_random_bytes(s in proptest::collection::vec(any::<u8>(), 0..48)) {
        same_or_first_keyword(&s)?;
    }

    /// A statement behind one of the first keywords, then anything: the first-keyword path
    /// passes it only when nothing after its first `;` could be a USE.
    #[test]
    fn first_keyword_then_anything(
        kw in prop_oneof![Just("SELECT"), Just("insert"), Just("Update"), Just("DELETE"),
                          Just("replace")],
        sep in prop_oneof![Just(" "), Just("\n"), Just("/**/"), Just("(")],
        rest in sqlish(),
    ) {
        let mut s = format!("{kw}{sep}").into_bytes();
        s.extend_from_slice(&rest);
        same_or_first_keyword(&s)?;
    }

    #[test]
    fn use_round_trips(pre in ws(), kw in "[uU][sS][eE]", mid in ws(), sp in "[ \t\n]{1,2}",
                       db in "[a-zA-Z0-9_$]{1,20}", quote in any::<bool>(), post in ws(),
                       semis in "[; ]{0,3}", tail in prop_oneof![Just(""), Just(" -- x"), Just(" # x")],
                       new in "[a-zA-Z0-9_` ]{1,20}") {
        let name = if quote { format!("`{db}`") } else { db.clone() };
        let stmt = format!("{pre}{kw}{sp}{mid}{name}{post}{semis}{tail}");
        let Class::Use(u) = classify(stmt.as_bytes()) else {
            return Err(TestCaseError::fail(format!("{stmt:?} not a USE")));
        };
        prop_assert_eq!(&u.name, &db);
        let out = rewrite(stmt.as_bytes(), &u, &new);
        let Class::Use(again) = classify(&out) else {
            return Err(TestCaseError::fail(format!("{out:?} not a USE")));
        };
        prop_assert_eq!(again.name, new);
        prop_assert!(out.starts_with(&stmt.as_bytes()[..u.start]));
        prop_assert!(out.ends_with(&stmt.as_bytes()[u.end..]));
        // The same USE next to another statement, or as dynamic SQL, is refused.
        for other in [format!("{stmt}\n;SELECT 1"), format!("SELECT 1;{stmt}"),
                      format!("EXECUTE IMMEDIATE '{}'", stmt.replace('\'', "''"))] {
            let refused = matches!(classify(other.as_bytes()), Class::Refuse { .. });
            prop_assert!(refused, "{:?}", other);
        }
    }

    #[test]
    fn strings_and_comments_hide_use(text in "[a-zA-Z ;`]{0,30}") {
        for s in [format!("SELECT '{text}'"), format!("/* {text} */ SELECT 1"),
                  format!("SELECT 1 -- {text}"), format!("SELECT \"{text}\"")] {
            prop_assert_eq!(classify(s.as_bytes()), Class::NotUse, "{:?}", s);
        }
    }
}
