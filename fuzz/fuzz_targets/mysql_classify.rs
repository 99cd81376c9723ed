//! Fuzzes the MySQL statement classifier (`dagz::mysql_sql`, issue 12): every statement a hooked
//! client sends goes through it. Properties: no panic; the quick filters never change the result
//! (`classify == classify_full`), except that a statement the first-keyword path passes
//! (`safe_single_statement`: SELECT/INSERT/UPDATE/DELETE/REPLACE) is `NotUse` and has no
//! USE/EXECUTE/PREPARE word after its first `;` in any reading; a rewritable `USE` keeps every byte outside its name and
//! classifies back to the new name; the same `USE` after another statement, or inside
//! `EXECUTE IMMEDIATE '…'`, is never passed as harmless; a refusal is stable when whitespace is
//! appended.
#![no_main]

use dagz::mysql_sql::{
    classify, classify_full, first_keyword_end, may_change_db, rewrite, safe_single_statement,
    Class,
};
use libfuzzer_sys::fuzz_target;

fn check_use(data: &[u8], start: usize, end: usize, name: &str) {
    for new in [format!("{name}_jw03"), "a`b c".to_owned()] {
        let u = dagz::mysql_sql::UseStmt {
            name: name.to_owned(),
            start,
            end,
        };
        let out = rewrite(data, &u, &new);
        assert!(out.starts_with(&data[..start]) && out.ends_with(&data[end..]));
        match classify(&out) {
            Class::Use(again) => assert_eq!(again.name, new, "{:?}", String::from_utf8_lossy(&out)),
            other => panic!(
                "rewrite of {:?} -> {:?} classifies as {other:?}",
                String::from_utf8_lossy(data),
                String::from_utf8_lossy(&out)
            ),
        }
    }
    // Not the only statement any more: never harmless.
    let mut two = b"SELECT 1;".to_vec();
    two.extend_from_slice(data);
    assert!(
        classify(&two) != Class::NotUse,
        "{:?}",
        String::from_utf8_lossy(&two)
    );
    let mut dynamic = b"EXECUTE IMMEDIATE '".to_vec();
    for &b in data {
        dynamic.extend_from_slice(match b {
            b'\'' => b"''",
            b'\\' => b"\\\\",
            _ => std::slice::from_ref(&b),
        });
    }
    dynamic.push(b'\'');
    assert!(
        matches!(classify(&dynamic), Class::Refuse { .. }),
        "{:?}",
        String::from_utf8_lossy(&dynamic)
    );
}

fuzz_target!(|data: &[u8]| {
    let class = classify(data);
    if safe_single_statement(data) {
        assert_eq!(class, Class::NotUse);
        // Every `;` that can end the first statement is at or after the first `;` byte that
        // follows its keyword; no keyword starts from that byte on.
        let end = first_keyword_end(data).expect("a first keyword");
        if let Some(p) = data[end..].iter().position(|&b| b == b';') {
            assert!(!may_change_db(&data[end + p..]), "{:?}", String::from_utf8_lossy(data));
        }
    } else {
        assert_eq!(
            class,
            classify_full(data),
            "quick filter changed the result for {:?}",
            String::from_utf8_lossy(data)
        );
    }
    match &class {
        Class::Use(u) if !data.ends_with(b"\0") => check_use(data, u.start, u.end, &u.name),
        Class::Refuse { .. } => {
            let mut more = data.to_vec();
            more.extend_from_slice(b" ");
            if !data.contains(&b'#') && !data.windows(2).any(|w| w == b"--") {
                assert!(matches!(classify(&more), Class::Refuse { .. }));
            }
        }
        _ => {}
    }
});
