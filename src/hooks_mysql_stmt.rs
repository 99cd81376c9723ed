//! MySQL/MariaDB statement hooks (issue 12): every statement sent through `mysql_query`,
//! `mysql_real_query`, `mysql_send_query`, `mysql_stmt_prepare` and libmariadb's
//! `mariadb_stmt_execute_direct` (the non-blocking `*_start` variants call these through the
//! library's PLT) is classified by [`mysql_sql::classify`]: a single `USE` is rewritten exactly,
//! a statement that may change the database in a way dagz cannot rewrite is refused with a
//! `dagz:` error on the handle, everything else goes to the real function unchanged.
//!
//! Fast path: a statement without a `USE`/`EXECUTE`/`PREPARE` word (the quick filter), from a
//! call site whose library copy is known, goes straight to the real function with no TLS access.
//! `mysql_query` is `mysql_real_query(q, strlen(q))` in libmariadb and libmysqlclient alike; the
//! hook calls that directly, so a statement is measured and filtered once, not again by the
//! `mysql_real_query` hook the library's own `mysql_query` would call through its PLT.

use crate::core::mysql_sql::{self, Class, Reason};
use crate::decide::{self, Decider};
use crate::dlog;
use crate::hook::{self, call_real as call};
use crate::hooks_mysql::{set_error, set_handle_error, MyReal, Mysql, StmtPrepareFn, MY};
use crate::log::Level;
use crate::mysql_settings as ms;
use crate::policy::Engine;
use crate::use_check;
use std::ffi::{c_char, c_int, c_ulong, c_void};

crate::trampoline_reg! {
    mysql_query => my_query, "rdx";
    mysql_real_query => my_real_query, "rcx";
    mysql_send_query => my_send_query, "rcx";
    mysql_stmt_prepare => my_stmt_prepare, "rcx";
    mariadb_stmt_execute_direct => my_stmt_execute_direct, "rcx";
    mysql_close => my_close, "rsi";
}

/// Whether `s` cannot change the database ([`mysql_sql::not_use`]). `semi`: the index of its
/// first `;` when the caller already knows it (`mysql_query`'s one pass), else `None` to scan with
/// the C library's `memchr` (the cheapest scan for statements of a few dozen bytes).
#[inline(always)]
fn not_use(s: &[u8], semi: Option<Option<usize>>) -> bool {
    mysql_sql::not_use_by(s, |from| match semi {
        Some(first) if first.is_none_or(|f| f >= from) => first,
        _ => {
            let t = &s[from..];
            // SAFETY: `t` is a live slice: memchr reads at most its `t.len()` bytes.
            let p = unsafe { libc::memchr(t.as_ptr().cast(), c_int::from(b';'), t.len()) };
            (!p.is_null()).then(|| p as usize - s.as_ptr() as usize)
        }
    })
}

/// The NUL-terminated statement at `q` (not NULL) and the index of its first `;`, in one pass
/// for a statement without `;` (the length `mysql_query` needs anyway).
///
/// # Safety
/// `q` is NUL-terminated.
#[inline(always)]
unsafe fn cstmt_at<'a>(q: *const c_char) -> (&'a [u8], Option<usize>) {
    // SAFETY: `q` is NUL-terminated: strchrnul stops at the NUL at the latest, and `p` points
    // into the same string, NUL-terminated too.
    unsafe {
        let p = libc::strchrnul(q, c_int::from(b';'));
        let first = p.offset_from(q) as usize;
        let (len, semi) = if *p == 0 {
            (first, None)
        } else if *p.add(1) == 0 {
            (first + 1, Some(first)) // a trailing `;`
        } else {
            (first + libc::strlen(p), Some(first))
        };
        (std::slice::from_raw_parts(q.cast::<u8>(), len), semi)
    }
}

/// The statement at `q` (not NULL): `len` bytes, or up to its NUL when `len` is `None` or
/// `(unsigned long)-1` (which libmariadb reads as "NUL-terminated").
///
/// # Safety
/// `q` is NUL-terminated, or `len` bytes are readable at `q`.
#[inline(always)]
unsafe fn stmt_at<'a>(q: *const c_char, len: Option<c_ulong>) -> &'a [u8] {
    let n = match len {
        Some(l) if l != c_ulong::MAX => l as usize,
        // SAFETY: the function's contract (no usable length: NUL-terminated).
        _ => unsafe { libc::strlen(q) },
    };
    // SAFETY: `n` bytes are readable at `q` (the function's contract, or up to the NUL).
    unsafe { std::slice::from_raw_parts(q.cast::<u8>(), n) }
}

/// The decision for a refused statement: pass it when the database it would switch to is one
/// the policy keeps (or dagz is off on this thread / for MySQL), else the refusal message.
fn refusal(
    reason: Reason,
    name: Option<String>,
    via: &'static str,
    mysql: *mut Mysql,
) -> Result<(), String> {
    match name {
        Some(n) => match decide::decide_with(Engine::Mysql, &n, via, || ms::handle(mysql))? {
            None => Ok(()),
            Some(new) => Err(mysql_sql::refusal_message(
                via,
                reason,
                Some((n.as_str(), new.as_str())),
            )),
        },
        // SAFETY: the decider is dropped at once.
        None => match unsafe { Decider::start(Engine::Mysql, via) } {
            None => Ok(()),
            Some(_) => Err(mysql_sql::refusal_message(via, reason, None)),
        },
    }
}

/// The statement at `q` rewritten for this worker (NUL-terminated, the NUL not counted in its
/// length), `None` to send it unchanged, `Err` to refuse it.
///
/// # Safety
/// As [`stmt_at`], or `q` is NULL.
unsafe fn rewrite_stmt(
    q: *const c_char,
    len: Option<c_ulong>,
    via: &'static str,
    mysql: *mut Mysql,
) -> Result<Option<Vec<u8>>, String> {
    if q.is_null() {
        return Ok(None);
    }
    // SAFETY: the function's contract.
    let s = unsafe { stmt_at(q, len) };
    match mysql_sql::classify(s) {
        Class::NotUse => Ok(None),
        Class::Use(u) => {
            match decide::decide_with(Engine::Mysql, &u.name, via, || ms::handle(mysql))? {
                None => {
                    use_check::forget(mysql); // now on a database dagz keeps
                    Ok(None)
                }
                Some(new) => {
                    use_check::note(mysql, Engine::Mysql, &new);
                    let mut out = mysql_sql::rewrite(s, &u, &new);
                    if len.is_none() && out.contains(&0) {
                        return Err("rewritten USE statement contains a NUL byte".to_owned());
                    }
                    out.push(0);
                    Ok(Some(out))
                }
            }
        }
        Class::Refuse { reason, name } => refusal(reason, name, via, mysql).map(|()| None),
    }
}

/// The `CALL`s of the statement at `q`, on a `MYSQL` handle (not a statement handle, which has
/// no connection to ask): `Err` when one may leave the connection in another database
/// (`hooks_mysql_call`).
///
/// # Safety
/// As [`rewrite_stmt`]; `mysql` is NULL or an initialised handle of `real`'s copy.
unsafe fn check_calls(
    real: &'static MyReal,
    mysql: *mut Mysql,
    q: *const c_char,
    len: Option<c_ulong>,
    via: &'static str,
) -> Result<(), String> {
    if q.is_null() || mysql.is_null() {
        return Ok(());
    }
    // SAFETY: the function's contract.
    let s = unsafe { stmt_at(q, len) };
    // SAFETY: the decider is dropped at once.
    if !mysql_sql::has_call_word(s) || unsafe { Decider::start(Engine::Mysql, via) }.is_none() {
        return Ok(());
    }
    // SAFETY: the function's contract.
    match unsafe { crate::hooks_mysql_call::check(real, mysql, s) } {
        None => Ok(()),
        Some((reason, name)) => refusal(reason, name, via, mysql),
    }
}

/// Shared slow path of the statement hooks, on the skeleton of `hook.rs`. `run(real, q, len)`
/// calls the real function; `refuse` fails the call on its handle.
///
/// # Safety
/// As [`rewrite_stmt`]; `run` and `refuse` uphold the hooked function's contract.
#[cold]
#[inline(never)]
unsafe fn stmt_hook(
    caller: usize,
    via: &'static str,
    mysql: *mut Mysql,
    q: *const c_char,
    len: Option<c_ulong>,
    run: impl Fn(&'static MyReal, *const c_char, c_ulong) -> c_int,
    refuse: impl FnOnce(Option<&'static MyReal>, &str),
) -> c_int {
    // `run` ignores the length for mysql_query, whose statement is NUL-terminated.
    let n = len.unwrap_or(0);
    let run = &run;
    hook::run(
        caller,
        |real| run(real, q, n),
        |real| {
            // SAFETY: the function's contract.
            let Some(new) = (unsafe { rewrite_stmt(q, len, via, mysql) })? else {
                // SAFETY: as above; a statement is only sent on an idle connection, so the
                // check's own query runs on one too.
                return unsafe { check_calls(real, mysql, q, len, via) }.map(|()| None);
            };
            let l = (new.len() - 1) as c_ulong;
            Ok(Some(call(real, || run(real, new.as_ptr().cast(), l))))
        },
        |real, msg| {
            refuse(real, msg);
            1
        },
    )
}

/// Refusal on a `MYSQL` handle.
///
/// # Safety
/// `mysql` is NULL or an initialised handle of `real`'s copy.
unsafe fn refuse_on(real: Option<&MyReal>, mysql: *mut Mysql, via: &str, msg: &str) {
    match real {
        // SAFETY: the function's contract.
        Some(real) => unsafe { set_error(real, mysql, msg) },
        None => dlog!(Level::Error, "no safe real {via}: {msg}"),
    }
}

/// A statement refused by the per-test check (`use_check`): the `dagz:` error on the handle.
///
/// # Safety
/// `mysql` is NULL or an initialised handle.
#[cold]
#[inline(never)]
unsafe fn refuse_use(caller: usize, mysql: *mut Mysql, via: &str, msg: &str) -> c_int {
    let real = crate::boundary::catch(|| MY.for_caller(caller)).ok();
    // SAFETY: the function's contract.
    unsafe { refuse_on(real, mysql, via, msg) };
    1
}

/// # Safety
/// Called through the trampoline with `mysql_close`'s arguments and contract.
unsafe extern "C" fn my_close(mysql: *mut Mysql, caller: usize) {
    use_check::forget(mysql);
    // SAFETY: forwarding the caller's argument to this copy's function of the same signature.
    hook::pass(
        caller,
        "mysql_close",
        |r: &MyReal| unsafe { (r.close)(mysql) },
        || (),
    )
}

/// # Safety
/// Called through the trampoline with `mysql_query`'s arguments and contract.
unsafe extern "C" fn my_query(mysql: *mut Mysql, q: *const c_char, caller: usize) -> c_int {
    // SAFETY: the function's contract; forwarding the caller's arguments to the real functions
    // of its copy (a rewritten statement is NUL-terminated and alive across the call).
    unsafe {
        if use_check::pending() {
            if let Err(msg) = use_check::check(mysql, use_check::stmt(q, None)) {
                return refuse_use(caller, mysql, "mysql_query", &msg);
            }
        }
        if !q.is_null() {
            let (s, semi) = cstmt_at(q);
            if not_use(s, Some(semi)) {
                if let Some(real) = MY.cached(caller) {
                    return (real.real_query)(mysql, q, s.len() as c_ulong);
                }
            }
        }
        stmt_hook(
            caller,
            "mysql_query",
            mysql,
            q,
            None,
            |r, q, _| (r.query)(mysql, q),
            |r, msg| refuse_on(r, mysql, "mysql_query", msg),
        )
    }
}

/// `mysql_real_query` and `mysql_send_query` (same signature): the fast path, else the slow one.
///
/// # Safety
/// `len` bytes are readable at `q`, or `len` is `(unsigned long)-1` and `q` NUL-terminated, or
/// `q` is NULL; `mysql` is NULL or an initialised handle.
#[inline(always)]
unsafe fn sized_query(
    via: &'static str,
    pick: fn(&MyReal) -> crate::hooks_mysql::RealQueryFn,
    mysql: *mut Mysql,
    q: *const c_char,
    len: c_ulong,
    caller: usize,
) -> c_int {
    // SAFETY: the function's contract; forwarding the caller's arguments (or a live rewritten
    // statement with its length) to the real function of its copy.
    unsafe {
        if use_check::pending() {
            if let Err(msg) = use_check::check(mysql, use_check::stmt(q, Some(len as usize))) {
                return refuse_use(caller, mysql, via, &msg);
            }
        }
        if !q.is_null() && not_use(stmt_at(q, Some(len)), None) {
            if let Some(real) = MY.cached(caller) {
                return pick(real)(mysql, q, len);
            }
        }
        stmt_hook(
            caller,
            via,
            mysql,
            q,
            Some(len),
            |r, q, n| pick(r)(mysql, q, n),
            |r, msg| refuse_on(r, mysql, via, msg),
        )
    }
}

/// # Safety
/// Called through the trampoline with `mysql_real_query`'s arguments and contract.
unsafe extern "C" fn my_real_query(
    mysql: *mut Mysql,
    q: *const c_char,
    len: c_ulong,
    caller: usize,
) -> c_int {
    // SAFETY: the same contract.
    unsafe { sized_query("mysql_real_query", |r| r.real_query, mysql, q, len, caller) }
}

/// # Safety
/// Called through the trampoline with `mysql_send_query`'s arguments and contract.
unsafe extern "C" fn my_send_query(
    mysql: *mut Mysql,
    q: *const c_char,
    len: c_ulong,
    caller: usize,
) -> c_int {
    // SAFETY: the same contract.
    unsafe { sized_query("mysql_send_query", |r| r.send_query, mysql, q, len, caller) }
}

/// `mysql_stmt_prepare` and `mariadb_stmt_execute_direct`: the statement is classified like a
/// query; a refusal goes to the `MYSQL_STMT` handle's own error text.
///
/// # Safety
/// As [`sized_query`], with `stmt` NULL or a handle of `mysql_stmt_init`.
unsafe fn prepare_hook(
    via: &'static str,
    pick: fn(&MyReal) -> Option<StmtPrepareFn>,
    stmt: *mut c_void,
    q: *const c_char,
    len: c_ulong,
    caller: usize,
) -> c_int {
    // SAFETY: the function's contract, as in `sized_query`.
    unsafe {
        if !q.is_null() && not_use(stmt_at(q, Some(len)), None) {
            if let Some(real) = MY.cached(caller) {
                return pick(real).map_or(1, |f| f(stmt, q, len));
            }
        }
        stmt_hook(
            caller,
            via,
            std::ptr::null_mut(), // a statement handle: no connection settings known
            q,
            Some(len),
            |r, q, n| pick(r).map_or(1, |f| f(stmt, q, n)),
            |r, msg| match r.and_then(|r| r.stmt_error.zip(r.stmt_errno)) {
                // MYSQL_STMT: `unsigned int last_errno; char last_error[…]` (libmariadb and
                // libmysqlclient): the code sits 4 bytes before the text.
                Some((error, errno)) => set_handle_error(stmt, error, errno, 4, msg),
                None => dlog!(Level::Error, "no safe real {via}: {msg}"),
            },
        )
    }
}

/// # Safety
/// Called through the trampoline with `mysql_stmt_prepare`'s arguments and contract.
unsafe extern "C" fn my_stmt_prepare(
    stmt: *mut c_void,
    q: *const c_char,
    len: c_ulong,
    caller: usize,
) -> c_int {
    // SAFETY: the same contract.
    unsafe {
        prepare_hook(
            "mysql_stmt_prepare",
            |r| r.stmt_prepare,
            stmt,
            q,
            len,
            caller,
        )
    }
}

/// # Safety
/// Called through the trampoline with `mariadb_stmt_execute_direct`'s arguments and contract
/// (its `size_t` length is passed like an `unsigned long`).
unsafe extern "C" fn my_stmt_execute_direct(
    stmt: *mut c_void,
    q: *const c_char,
    len: c_ulong,
    caller: usize,
) -> c_int {
    // SAFETY: the same contract.
    unsafe {
        prepare_hook(
            "mariadb_stmt_execute_direct",
            |r| r.stmt_execute_direct,
            stmt,
            q,
            len,
            caller,
        )
    }
}
