//! `CALL` on a MySQL/MariaDB connection dagz reroutes (issue 12). A procedure of the current
//! database that runs `EXECUTE IMMEDIATE 'USE x'` (or `PREPARE … FROM` one) leaves the caller in
//! `x` after `CALL` on MariaDB: the server restores the caller's database only when it switched to
//! the procedure's own on entry. The statement text does not show the body, so before a `CALL`
//! is sent the hook reads the body of each procedure it names from `information_schema.ROUTINES`
//! on the same (idle) connection and classifies it like a statement, following the `CALL`s in it;
//! a procedure that may switch is refused like a statement. A procedure of another database is
//! harmless (the server switches back after it).

use crate::core::mysql_sql::{self, CallTarget, Class, Reason};
use crate::hooks_mysql::{MyReal, Mysql, ResultFns};
use std::ffi::c_ulong;
use std::fmt::Write as _;

/// Nesting of `CALL`s followed into procedure bodies.
const MAX_DEPTH: usize = 4;

/// What the server says of one procedure.
enum Body {
    /// No such procedure (the server will say so at `CALL`), or one of another database.
    Harmless,
    /// The body of a procedure of the current database.
    Text(Vec<u8>),
    /// It exists, but dagz cannot read its body (privileges), or the query failed.
    Unknown,
}

/// `text` as a MySQL string expression that needs no escaping.
fn hex_literal(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len() * 2 + 30);
    out.push_str("CONVERT(X'");
    for b in text {
        let _ = write!(out, "{b:02x}");
    }
    out.push_str("' USING utf8mb4)");
    out
}

/// Reads the body of `t` on `mysql`.
///
/// # Safety
/// `mysql` is an initialised, connected and idle handle of the copy of `real` and `f`.
unsafe fn body(real: &MyReal, f: &ResultFns, mysql: *mut Mysql, t: &CallTarget) -> Body {
    let db = t.db.as_deref().map_or("DATABASE()".to_owned(), hex_literal);
    let sql = format!(
        "SELECT ROUTINE_DEFINITION, ROUTINE_SCHEMA <=> DATABASE() FROM information_schema.ROUTINES \
         WHERE ROUTINE_TYPE = 'PROCEDURE' AND ROUTINE_SCHEMA = {db} AND ROUTINE_NAME = {}",
        hex_literal(&t.name)
    );
    // SAFETY: the function's contract; `sql` is alive across the call, every pointer read below
    // comes from the library for this result, which is freed once.
    unsafe {
        if (real.real_query)(mysql, sql.as_ptr().cast(), sql.len() as c_ulong) != 0 {
            return Body::Unknown;
        }
        let res = (f.store)(mysql);
        if res.is_null() {
            return Body::Unknown;
        }
        let row = (f.fetch_row)(res);
        let out = if row.is_null() {
            Body::Harmless
        } else {
            let lens = (f.lengths)(res);
            let (def, same) = (*row, *row.add(1));
            if !same.is_null() && *same == b'0' as std::ffi::c_char {
                Body::Harmless
            } else if def.is_null() || lens.is_null() {
                Body::Unknown
            } else {
                Body::Text(std::slice::from_raw_parts(def.cast::<u8>(), *lens as usize).to_vec())
            }
        };
        (f.free)(res);
        out
    }
}

/// Why the `CALL`s in `stmt` may change the database, and the database they would switch to
/// when that is one known name; `None` when none can.
///
/// # Safety
/// As [`body`].
pub(crate) unsafe fn check(
    real: &MyReal,
    mysql: *mut Mysql,
    stmt: &[u8],
) -> Option<(Reason, Option<String>)> {
    let mut pending: Vec<(CallTarget, usize)> = mysql_sql::call_targets(stmt)
        .into_iter()
        .map(|t| (t, 0))
        .collect();
    if pending.is_empty() {
        return None;
    }
    let Some(f) = real.results.as_ref() else {
        return Some((Reason::CallUnknown, None));
    };
    let mut seen = Vec::new();
    while let Some((t, depth)) = pending.pop() {
        if t.name.is_empty() || depth >= MAX_DEPTH {
            return Some((Reason::CallUnknown, None));
        }
        if seen.contains(&t) {
            continue;
        }
        // SAFETY: the function's contract.
        match unsafe { body(real, f, mysql, &t) } {
            Body::Harmless => {}
            Body::Unknown => return Some((Reason::CallUnknown, None)),
            Body::Text(text) => match mysql_sql::classify_full(&text) {
                Class::NotUse => pending.extend(
                    mysql_sql::call_targets(&text)
                        .into_iter()
                        .map(|n| (n, depth + 1)),
                ),
                Class::Use(u) => return Some((Reason::Call, Some(u.name))),
                Class::Refuse { name, .. } => return Some((Reason::Call, name)),
            },
        }
        seen.push(t);
    }
    None
}
