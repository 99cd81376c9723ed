//! Statements that only end a transaction (`ROLLBACK`, `COMMIT`, `END`, `ABORT`, optionally with
//! `WORK`/`TRANSACTION` and trailing semicolons): they read and write no data, so the per-test
//! check (`use_check`) lets them through without preparing — a `ROLLBACK` that releases the very
//! lock a `prepare` would wait for must not run that `prepare` first.

/// Whether `stmt` only ends the current transaction.
pub fn ends_transaction(stmt: &[u8]) -> bool {
    let mut words = stmt
        .split(|b| b.is_ascii_whitespace() || *b == b';')
        .filter(|w| !w.is_empty());
    let Some(first) = words.next() else {
        return false;
    };
    let is = |w: &[u8], k: &str| w.eq_ignore_ascii_case(k.as_bytes());
    if !["ROLLBACK", "COMMIT", "END", "ABORT"]
        .iter()
        .any(|k| is(first, k))
    {
        return false;
    }
    match words.next() {
        None => true,
        Some(w) => (is(w, "WORK") || is(w, "TRANSACTION")) && words.next().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::ends_transaction as e;

    #[test]
    fn transaction_ends() {
        for s in [
            "ROLLBACK",
            "rollback;",
            " COMMIT ",
            "END",
            "abort",
            "COMMIT WORK",
            "ROLLBACK;\n",
        ] {
            assert!(e(s.as_bytes()), "{s}");
        }
        for s in [
            "",
            ";",
            "ROLLBACK TO SAVEPOINT a",
            "COMMIT AND CHAIN",
            "SELECT 1",
            "ROLLBACKS",
            "COMMIT; DELETE FROM t",
            "BEGIN",
        ] {
            assert!(!e(s.as_bytes()), "{s}");
        }
    }
}
