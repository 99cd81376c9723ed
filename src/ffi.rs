//! The `dagz_*` C ABI declared in `shim/dagz.h`: thread-local bypass, the rewrite rules for the
//! Python package (so they exist once), version, and the decision callback.
//!
//! Conventions: a function that produces a string writes it NUL-terminated into `out` (truncated to
//! `out_len - 1` bytes) and returns its full length, so a caller whose buffer was too small retries
//! with `len + 1`; on error it writes the one-line message into `out` instead and returns -1.
//! Every body is a panic boundary.

use crate::boundary;
use crate::conninfo;
use crate::core::{abi, message};
use crate::decide::{self, Decider, DecisionCallback, DecisionCallback2};
use crate::guard;
use crate::hooks_pg::ProcessEnv;
use crate::policy::{Decision, Engine};
use std::ffi::{c_char, c_int, c_uint};

/// Bumped on any incompatible change of the functions below; the Python package checks it.
pub const ABI_VERSION: c_int = abi::ABI_VERSION;

/// # Safety
/// `out` is NULL or writable for `out_len` bytes.
unsafe fn write_out(s: &[u8], out: *mut c_char, out_len: usize) -> isize {
    if !out.is_null() && out_len > 0 {
        let n = s.len().min(out_len - 1);
        // SAFETY: the function's contract; n < out_len.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), out.cast::<u8>(), n);
            *out.add(n) = 0;
        }
    }
    s.len() as isize
}

/// Runs `f` behind the panic boundary and encodes its result per the conventions above.
///
/// # Safety
/// As [`write_out`].
unsafe fn string_result(
    out: *mut c_char,
    out_len: usize,
    f: impl FnOnce() -> Result<Vec<u8>, String>,
) -> isize {
    let r = boundary::catch(f);
    // SAFETY: the function's contract.
    unsafe {
        match r {
            Ok(s) => write_out(&s, out, out_len),
            Err(e) => {
                write_out(message::prefixed(&e).as_bytes(), out, out_len);
                -1
            }
        }
    }
}

/// # Safety
/// `p` is NULL or NUL-terminated, alive for `'a`.
unsafe fn arg<'a>(p: *const c_char, what: &str) -> Result<&'a [u8], String> {
    // SAFETY: the function's contract.
    unsafe { crate::cstr::bytes(p) }.ok_or_else(|| format!("{what} is NULL"))
}

/// # Safety
/// As [`arg`].
unsafe fn arg_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, String> {
    // SAFETY: the function's contract.
    std::str::from_utf8(unsafe { arg(p, what) }?).map_err(|_| format!("{what} is not UTF-8"))
}

fn engine(code: c_int) -> Result<Engine, String> {
    abi::engine_from_code(code).ok_or_else(|| format!("unknown engine code {code}"))
}

#[no_mangle]
pub extern "C" fn dagz_abi_version() -> c_int {
    ABI_VERSION
}

#[no_mangle]
pub extern "C" fn dagz_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Enters the calling thread's bypass; returns the new depth.
#[no_mangle]
pub extern "C" fn dagz_bypass_enter() -> c_int {
    boundary::or(-1, || guard::bypass_enter() as c_int)
}

/// Leaves one bypass level; returns the new depth, or -1 if the thread was not in a bypass.
#[no_mangle]
pub extern "C" fn dagz_bypass_exit() -> c_int {
    boundary::or(-1, || guard::bypass_exit().map_or(-1, |d| d as c_int))
}

#[no_mangle]
pub extern "C" fn dagz_bypass_depth() -> c_int {
    boundary::or(-1, || guard::bypass_depth() as c_int)
}

/// Registers (or, with NULL, removes) the decision callback.
///
/// # Safety
/// `cb` is NULL or a function of the `dagz_decision_cb` signature and contract that stays valid
/// for the life of the process (it is called at later connects, on any thread).
#[no_mangle]
pub unsafe extern "C" fn dagz_set_decision_callback(cb: Option<DecisionCallback>) -> c_int {
    boundary::or(-1, || {
        decide::set_callback(cb);
        0
    })
}

/// Registers (or, with NULL, removes) the decision callback that also receives the connection's
/// settings; it replaces a callback registered with `dagz_set_decision_callback` (and the other
/// way round).
///
/// # Safety
/// `cb` is NULL or a function of the `dagz_decision_cb2` signature and contract that stays valid
/// for the life of the process (it is called at later connects, on any thread).
#[no_mangle]
pub unsafe extern "C" fn dagz_set_decision_callback2(cb: Option<DecisionCallback2>) -> c_int {
    boundary::or(-1, || {
        decide::set_callback2(cb);
        0
    })
}

/// 0 for a string result that succeeded, -1 for one that failed.
fn status(r: isize) -> c_int {
    if r < 0 {
        -1
    } else {
        0
    }
}

/// The worker number and count as the shim sees them now. 0, or -1 with the message in `out`.
///
/// # Safety
/// `num` and `count` are NULL or writable; `out` is NULL or writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn dagz_worker(
    num: *mut c_uint,
    count: *mut c_uint,
    out: *mut c_char,
    out_len: usize,
) -> c_int {
    // SAFETY: the function's contract.
    let r = unsafe {
        string_result(out, out_len, || {
            let w = decide::worker()?;
            if !num.is_null() {
                *num = w.num;
            }
            if !count.is_null() {
                *count = w.count;
            }
            Ok(Vec::new())
        })
    };
    status(r)
}

/// Validates the policy (file + env) now: 0, or -1 with the message in `out`.
///
/// # Safety
/// `out` is NULL or writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn dagz_policy_check(out: *mut c_char, out_len: usize) -> c_int {
    // SAFETY: the function's contract.
    let r = unsafe { string_result(out, out_len, || decide::policy().map(|_| Vec::new())) };
    status(r)
}

/// The declarative policy's decision for `name` on the current worker (no callback, no bypass).
/// Writes the name to use (the original when kept); `*rerouted` tells which.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `rerouted` is NULL or writable; `out` is NULL or writable
/// for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn dagz_policy_decide(
    engine_code: c_int,
    name: *const c_char,
    rerouted: *mut c_int,
    out: *mut c_char,
    out_len: usize,
) -> isize {
    // SAFETY: the function's contract.
    unsafe {
        string_result(out, out_len, || {
            let e = engine(engine_code)?;
            let name = arg_str(name, "name")?;
            let d = decide::policy()?.decide(e, name, &decide::worker()?)?;
            let (flag, s) = match d {
                Decision::Keep(_) => (0, name.to_owned()),
                Decision::Reroute(n) => (1, n),
            };
            if !rerouted.is_null() {
                *rerouted = flag;
            }
            Ok(s.into_bytes())
        })
    }
}

/// The name template applied to `name` for worker `worker` (no checks besides the length limit).
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` is NULL or writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn dagz_policy_render(
    engine_code: c_int,
    name: *const c_char,
    worker: c_uint,
    out: *mut c_char,
    out_len: usize,
) -> isize {
    // SAFETY: the function's contract.
    unsafe {
        string_result(out, out_len, || {
            let e = engine(engine_code)?;
            let w = decide::worker()?;
            let w = crate::policy::Worker {
                num: worker,
                count: w.count,
            };
            Ok(decide::policy()?
                .render(e, arg_str(name, "name")?, &w)?
                .into_bytes())
        })
    }
}

/// The suffix the template adds for `worker` (`_jw03`).
///
/// # Safety
/// `out` is NULL or writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn dagz_policy_suffix(
    engine_code: c_int,
    worker: c_uint,
    out: *mut c_char,
    out_len: usize,
) -> isize {
    // SAFETY: the function's contract.
    unsafe {
        string_result(out, out_len, || {
            let e = engine(engine_code)?;
            let w = crate::policy::Worker {
                num: worker,
                count: decide::worker()?.count,
            };
            Ok(decide::policy()?.suffix(e, &w).into_bytes())
        })
    }
}

/// The database of a URL (`postgresql://…/db`, `mysql+pymysql://…/db`); -2 when it names none.
///
/// # Safety
/// `url` is NULL or NUL-terminated; `out` is NULL or writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn dagz_url_get_db(
    url: *const c_char,
    out: *mut c_char,
    out_len: usize,
) -> isize {
    let mut none = false;
    // SAFETY: the function's contract.
    let r = unsafe {
        string_result(out, out_len, || {
            match conninfo::url_get_db(arg(url, "url")?).map_err(|e| e.to_string())? {
                Some(db) => Ok(db.into_bytes()),
                None => {
                    none = true;
                    Ok(Vec::new())
                }
            }
        })
    };
    if none {
        -2
    } else {
        r
    }
}

/// `url` with its database replaced by `db`, every other byte kept.
///
/// # Safety
/// `url` and `db` are NULL or NUL-terminated; `out` is NULL or writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn dagz_url_set_db(
    url: *const c_char,
    db: *const c_char,
    out: *mut c_char,
    out_len: usize,
) -> isize {
    // SAFETY: the function's contract.
    unsafe {
        string_result(out, out_len, || {
            conninfo::url_set_db(arg(url, "url")?, arg_str(db, "db")?).map_err(|e| e.to_string())
        })
    }
}

/// The full connect-time pipeline of the libpq hooks (bypass, callback, policy) applied to a
/// conninfo or URI: for drivers the shim cannot see (psycopg's pure-Python implementation).
/// Writes the conninfo to use (the original when unchanged).
///
/// # Safety
/// `conninfo` is NULL or NUL-terminated; `out` is NULL or writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn dagz_pg_rewrite_conninfo(
    conninfo: *const c_char,
    out: *mut c_char,
    out_len: usize,
) -> isize {
    // SAFETY: the function's contract.
    unsafe {
        string_result(out, out_len, || {
            let ci = arg(conninfo, "conninfo")?;
            // (inside the unsafe block above: `d` is dropped before the export returns)
            let Some(mut d) = Decider::start(Engine::Postgres, "dagz_pg_rewrite_conninfo") else {
                return Ok(ci.to_vec());
            };
            d.with_settings(|| conninfo::settings_of_conninfo(ci).map(|s| s.block()));
            match conninfo::rewrite_conninfo(ci, &ProcessEnv, &mut |n| d.decide(n)) {
                Ok(Some(new)) => Ok(new),
                Ok(None) => Ok(ci.to_vec()),
                Err(conninfo::RewriteError::Refused(m)) => Err(m),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// `s` with any password replaced by `***` (for log lines).
///
/// # Safety
/// `s` is NULL or NUL-terminated; `out` is NULL or writable for `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn dagz_redact(s: *const c_char, out: *mut c_char, out_len: usize) -> isize {
    // SAFETY: the function's contract.
    unsafe {
        string_result(out, out_len, || {
            Ok(conninfo::redact(arg(s, "s")?).into_bytes())
        })
    }
}

/// `DAGZ_STMT_CALL`'s text: `DB:NAME` pairs, each part hex-encoded, separated by `,`.
fn encode_calls(calls: &[crate::mysql_sql::CallTarget]) -> Vec<u8> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let pairs: Vec<String> = calls
        .iter()
        .map(|c| format!("{}:{}", hex(c.db.as_deref().unwrap_or(b"")), hex(&c.name)))
        .collect();
    pairs.join(",").into_bytes()
}

/// The MySQL hooks' statement rule for drivers the shim cannot see (PyMySQL): classifies the
/// statement of `len` bytes at `sql` (`len == (size_t)-1`: NUL-terminated) and sets `*kind`:
///
/// * `DAGZ_STMT_OTHER`: cannot change the database; writes nothing, returns 0.
/// * `DAGZ_STMT_USE`: a single `USE` dagz rewrites exactly. `new_db` NULL: writes the database it
///   names; else writes the statement with that name replaced by `new_db` (quoted).
/// * `DAGZ_STMT_REFUSE`: may change the database in a way dagz cannot rewrite. `new_db` NULL:
///   writes the database it would switch to ("" when unknown); else (the name the caller's
///   decision would use instead, "" when unknown) writes the refusal message and returns -1.
/// * `DAGZ_STMT_CALL`: otherwise harmless, but calls stored procedures, whose bodies decide
///   (`hooks_mysql_call`). `new_db` NULL: writes them ([`encode_calls`]); else nothing.
///
/// # Safety
/// `sql` is NULL, NUL-terminated (with `len == (size_t)-1`) or readable for `len` bytes;
/// `new_db` is NULL or NUL-terminated; `kind` is NULL or writable; `out` is NULL or writable for
/// `out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn dagz_mysql_rewrite_statement(
    sql: *const c_char,
    len: usize,
    new_db: *const c_char,
    kind: *mut c_int,
    out: *mut c_char,
    out_len: usize,
) -> isize {
    use crate::mysql_sql::{call_targets, classify, refusal_message, rewrite, Class};
    // SAFETY: the function's contract.
    unsafe {
        string_result(out, out_len, || {
            if sql.is_null() {
                return Err("sql is NULL".to_owned());
            }
            let stmt: &[u8] = if len == usize::MAX {
                std::ffi::CStr::from_ptr(sql).to_bytes()
            } else {
                std::slice::from_raw_parts(sql.cast::<u8>(), len)
            };
            let new = if new_db.is_null() {
                None
            } else {
                Some(arg_str(new_db, "new_db")?)
            };
            let class = classify(stmt);
            let calls = match class {
                Class::NotUse => call_targets(stmt),
                _ => Vec::new(),
            };
            if !kind.is_null() {
                *kind = match class {
                    Class::NotUse if !calls.is_empty() => abi::STMT_CALL,
                    Class::NotUse => abi::STMT_OTHER,
                    Class::Use(_) => abi::STMT_USE,
                    Class::Refuse { .. } => abi::STMT_REFUSE,
                };
            }
            match (class, new) {
                (Class::NotUse, None) if !calls.is_empty() => Ok(encode_calls(&calls)),
                (Class::NotUse, _) => Ok(Vec::new()),
                (Class::Use(u), None) => Ok(u.name.into_bytes()),
                (Class::Use(u), Some(new)) => Ok(rewrite(stmt, &u, new)),
                (Class::Refuse { name, .. }, None) => Ok(name.unwrap_or_default().into_bytes()),
                (Class::Refuse { reason, name }, Some(new)) => {
                    let target = name
                        .as_deref()
                        .filter(|_| !new.is_empty())
                        .map(|n| (n, new));
                    Err(refusal_message("PyMySQL", reason, target))
                }
            }
        })
    }
}

/// A new test began (generation `gen`, increasing): connections rerouted in an earlier test are
/// prepared again before their first statement, through the use callback, when `check` is
/// non-zero. Returns 0.
#[no_mangle]
pub extern "C" fn dagz_begin_test(gen: u64, check: c_int) -> c_int {
    boundary::or(-1, || {
        crate::use_check::begin_test(gen, check != 0);
        0
    })
}

/// Registers (or, with NULL, removes) the use callback, called before the first statement of a
/// test on a connection rerouted in an earlier one.
///
/// # Safety
/// `cb` is NULL or a function of the `dagz_use_cb` signature and contract that stays valid for
/// the life of the process (it is called inside statements, on any thread).
#[no_mangle]
pub unsafe extern "C" fn dagz_set_use_callback(cb: Option<crate::use_check::UseCallback>) -> c_int {
    boundary::or(-1, || {
        crate::use_check::set_callback(cb);
        0
    })
}
