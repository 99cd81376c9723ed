//! Stored procedures a statement calls (issue 12). On MariaDB a procedure that runs
//! `EXECUTE IMMEDIATE 'USE x'` (or `PREPARE … FROM` a `USE`) leaves its caller in `x` after
//! `CALL` when the procedure lives in the caller's current database (the server restores the
//! caller's database only when it had to switch to the procedure's own on entry). The statement
//! text cannot tell what a procedure does: the hook reads the body of every procedure found here
//! from the server and classifies it.

use super::lex::{self, Kind, Mode, Tok};
use super::word_is;

/// One `CALL [db.]name`: the database as written (`None`: the current one) and the name; an
/// empty name when the statement's text does not say (the caller refuses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTarget {
    pub db: Option<Vec<u8>>,
    pub name: Vec<u8>,
}

/// An unquoted or backtick-quoted identifier token's value.
fn ident(s: &[u8], t: &Tok) -> Option<Vec<u8>> {
    match t.kind {
        Kind::Word => Some(s[t.start..t.end].to_vec()),
        Kind::Backtick => Some(lex::backtick_value(s, t)).filter(|v| !v.is_empty()),
        _ => None,
    }
}

/// The procedures `stmt` calls: every `CALL` word that is not part of a qualified name, in any
/// statement of a multi-statement string or compound statement, in every reading the server can
/// have (`sql_mode`, executable comments); empty when none.
pub fn call_targets(stmt: &[u8]) -> Vec<CallTarget> {
    let body = stmt.strip_suffix(&[0]).unwrap_or(stmt);
    let first = lex::lex(body, Mode::DEFAULT);
    let mut out = Vec::new();
    targets_in(body, &first.toks, &mut out);
    if first.saw_backslash || first.saw_versioned {
        for mode in &Mode::ALL[1..] {
            targets_in(body, &lex::lex(body, *mode).toks, &mut out);
        }
    }
    out
}

fn targets_in(s: &[u8], t: &[Tok], out: &mut Vec<CallTarget>) {
    for k in 0..t.len() {
        if !word_is(s, t.get(k), b"call") || (k > 0 && t[k - 1].kind == Kind::Dot) {
            continue;
        }
        let part = |i: usize| t.get(i).and_then(|n| ident(s, n));
        let target = match part(k + 1) {
            Some(db) if t.get(k + 2).is_some_and(|n| n.kind == Kind::Dot) => CallTarget {
                db: Some(db),
                name: part(k + 3).unwrap_or_default(),
            },
            Some(name) => CallTarget { db: None, name },
            None => CallTarget {
                db: None,
                name: Vec::new(),
            },
        };
        if !out.contains(&target) {
            out.push(target);
        }
    }
}
