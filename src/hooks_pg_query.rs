//! libpq statement entry points and `PQfinish`, for the per-test check of `use_check`:
//! `PQexec`, `PQexecParams`, `PQprepare`, `PQexecPrepared` and their `PQsend*` forms (psycopg2
//! uses `PQexec`/`PQsendQuery`, psycopg 3's C implementation the `PQsend*` family).
//!
//! Fast path: one relaxed load ([`use_check::pending`]) and, from a call site whose library copy
//! is known, a direct call of the real function with the caller's arguments. When the check
//! fails (the connection's `prepare` for this test failed), the statement is not sent: in its
//! place the server gets a `DO` block that raises the `dagz:` message, so the driver reports it
//! as the statement's error (it runs nothing on the unprepared database).

use crate::dlog;
use crate::hook::{self, call_real};
use crate::hooks_pg::{PGconn, PgReal, PG};
use crate::log::Level;
use crate::resolve::Lib;
use crate::use_check;
use std::ffi::{c_char, c_int, c_uint, CString};
use std::ptr::null;

type PGresult = std::ffi::c_void;
type Oid = c_uint;
type ExecFn = unsafe extern "C" fn(*mut PGconn, *const c_char) -> *mut PGresult;
type SendFn = unsafe extern "C" fn(*mut PGconn, *const c_char) -> c_int;
type ParamsFn<R> = unsafe extern "C" fn(
    *mut PGconn,
    *const c_char,
    c_int,
    *const Oid,
    *const *const c_char,
    *const c_int,
    *const c_int,
    c_int,
) -> R;
type PrepareFn<R> =
    unsafe extern "C" fn(*mut PGconn, *const c_char, *const c_char, c_int, *const Oid) -> R;
type PreparedFn<R> = unsafe extern "C" fn(
    *mut PGconn,
    *const c_char,
    c_int,
    *const *const c_char,
    *const c_int,
    *const c_int,
    c_int,
) -> R;
type FinishFn = unsafe extern "C" fn(*mut PGconn);

/// The statement entry points of one libpq copy.
pub struct PgQuery {
    exec: ExecFn,
    exec_params: ParamsFn<*mut PGresult>,
    prepare: PrepareFn<*mut PGresult>,
    exec_prepared: PreparedFn<*mut PGresult>,
    send_query: SendFn,
    send_query_params: ParamsFn<c_int>,
    send_prepare: PrepareFn<c_int>,
    send_query_prepared: PreparedFn<c_int>,
    finish: FinishFn,
}

impl PgQuery {
    pub fn build(lib: &Lib) -> Result<PgQuery, String> {
        // SAFETY: each address is libpq's definition of that exported function in this copy,
        // whose C signature is the target type's (libpq-fe.h).
        unsafe {
            use std::mem::transmute as t;
            Ok(PgQuery {
                exec: t::<usize, ExecFn>(lib.sym("PQexec")?),
                exec_params: t::<usize, ParamsFn<*mut PGresult>>(lib.sym("PQexecParams")?),
                prepare: t::<usize, PrepareFn<*mut PGresult>>(lib.sym("PQprepare")?),
                exec_prepared: t::<usize, PreparedFn<*mut PGresult>>(lib.sym("PQexecPrepared")?),
                send_query: t::<usize, SendFn>(lib.sym("PQsendQuery")?),
                send_query_params: t::<usize, ParamsFn<c_int>>(lib.sym("PQsendQueryParams")?),
                send_prepare: t::<usize, PrepareFn<c_int>>(lib.sym("PQsendPrepare")?),
                send_query_prepared: t::<usize, PreparedFn<c_int>>(lib.sym("PQsendQueryPrepared")?),
                finish: t::<usize, FinishFn>(lib.sym("PQfinish")?),
            })
        }
    }
}

crate::trampoline_reg! {
    PQexec => pq_exec, "rdx";
    PQsendQuery => pq_send_query, "rdx";
    PQprepare => pq_prepare, "r9";
    PQsendPrepare => pq_send_prepare, "r9";
    PQfinish => pq_finish, "rsi";
}
crate::trampoline_tls! {
    PQexecParams => pq_exec_params;
    PQsendQueryParams => pq_send_query_params;
    PQexecPrepared => pq_exec_prepared;
    PQsendQueryPrepared => pq_send_query_prepared;
}

/// Whether a statement result is a `PGresult *` (sync) or an `int` (the `PQsend*` forms).
trait Outcome: Copy {
    /// The failure returned when no libpq copy may be called.
    const NONE: Self;
    /// Sends `sql` (no parameters) in place of the refused statement.
    ///
    /// # Safety
    /// `conn` is the caller's connection of `real`'s copy; `sql` NUL-terminated.
    unsafe fn send_instead(real: &PgReal, conn: *mut PGconn, sql: *const c_char) -> Self;
}

impl Outcome for *mut PGresult {
    const NONE: Self = std::ptr::null_mut();
    unsafe fn send_instead(real: &PgReal, conn: *mut PGconn, sql: *const c_char) -> Self {
        // SAFETY: the function's contract; no parameters.
        unsafe { (real.q.exec_params)(conn, sql, 0, null(), null(), null(), null(), 0) }
    }
}

impl Outcome for c_int {
    const NONE: Self = 0;
    unsafe fn send_instead(real: &PgReal, conn: *mut PGconn, sql: *const c_char) -> Self {
        // SAFETY: the function's contract; no parameters (allowed in pipeline mode too).
        unsafe { (real.q.send_query_params)(conn, sql, 0, null(), null(), null(), null(), 0) }
    }
}

/// A `DO` block that raises `dagz: msg` (one line) on the server.
fn raise_sql(msg: &str) -> CString {
    let text: String = crate::core::message::prefixed(msg)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.replace('\'', "''").replace("$dagz$", "$ dagz $");
    let sql = format!("DO $dagz$BEGIN RAISE EXCEPTION USING MESSAGE = '{text}'; END$dagz$");
    CString::new(sql).unwrap_or_default()
}

/// A statement on `conn`: the per-test check, then `call` on the caller's copy.
///
/// # Safety
/// `call` calls the real function with the caller's arguments (its contract upheld by them);
/// `q` is NULL or the statement's NUL-terminated text.
#[inline(always)]
unsafe fn statement<R: Outcome>(
    caller: usize,
    conn: *mut PGconn,
    q: *const c_char,
    call: impl Fn(&'static PgReal) -> R,
) -> R {
    if use_check::pending() {
        // SAFETY: `q` is NULL or the caller's NUL-terminated statement.
        if let Err(msg) = use_check::check(conn, unsafe { use_check::stmt(q, None) }) {
            // SAFETY: the function's contract.
            return unsafe { refuse(caller, conn, &msg) };
        }
    }
    hook::pass(caller, "libpq statement function", call, || R::NONE)
}

/// The statement refused with `msg`: the server raises it instead.
///
/// # Safety
/// `conn` is the caller's connection.
#[cold]
#[inline(never)]
unsafe fn refuse<R: Outcome>(caller: usize, conn: *mut PGconn, msg: &str) -> R {
    dlog!(Level::Error, "pg statement refused: {msg}");
    let sql = raise_sql(msg);
    match crate::boundary::catch(|| PG.for_caller(caller)) {
        // SAFETY: the function's contract; `sql` is alive across the call.
        Ok(real) => call_real(real, || unsafe {
            R::send_instead(real, conn, sql.as_ptr())
        }),
        Err(_) => R::NONE,
    }
}

/// # Safety
/// Called through the trampoline with `PQexec`'s arguments and contract.
unsafe extern "C" fn pq_exec(conn: *mut PGconn, q: *const c_char, caller: usize) -> *mut PGresult {
    // SAFETY: forwarding the caller's arguments to this copy's function of the same signature.
    unsafe { statement(caller, conn, q, |r| (r.q.exec)(conn, q)) }
}

/// # Safety
/// Called through the trampoline with `PQsendQuery`'s arguments and contract.
unsafe extern "C" fn pq_send_query(conn: *mut PGconn, q: *const c_char, caller: usize) -> c_int {
    // SAFETY: as in `pq_exec`.
    unsafe { statement(caller, conn, q, |r| (r.q.send_query)(conn, q)) }
}

/// # Safety
/// Called through the trampoline with `PQprepare`'s arguments and contract.
unsafe extern "C" fn pq_prepare(
    conn: *mut PGconn,
    name: *const c_char,
    q: *const c_char,
    n: c_int,
    types: *const Oid,
    caller: usize,
) -> *mut PGresult {
    // SAFETY: as in `pq_exec`.
    unsafe { statement(caller, conn, q, |r| (r.q.prepare)(conn, name, q, n, types)) }
}

/// # Safety
/// Called through the trampoline with `PQsendPrepare`'s arguments and contract.
unsafe extern "C" fn pq_send_prepare(
    conn: *mut PGconn,
    name: *const c_char,
    q: *const c_char,
    n: c_int,
    types: *const Oid,
    caller: usize,
) -> c_int {
    // SAFETY: as in `pq_exec`.
    unsafe {
        statement(caller, conn, q, |r| {
            (r.q.send_prepare)(conn, name, q, n, types)
        })
    }
}

/// The hook bodies of the `PQ*Params` functions (`params`) and the `PQ*Prepared` ones
/// (`prepared`): one signature each, the real function picked by field.
macro_rules! hook_bodies {
    ($($name:ident: params $field:ident -> $ret:ty;)*) => {$(
        #[doc = concat!("# Safety\nCalled through the trampoline with the `", stringify!($field),
                        "` function's arguments and contract.")]
        #[allow(clippy::too_many_arguments)]
        unsafe extern "C" fn $name(
            conn: *mut PGconn,
            q: *const c_char,
            n: c_int,
            types: *const Oid,
            values: *const *const c_char,
            lengths: *const c_int,
            formats: *const c_int,
            rf: c_int,
        ) -> $ret {
            // SAFETY: forwarding the caller's arguments to this copy's function of the same
            // signature.
            let f = move |r: &PgReal| unsafe {
                (r.q.$field)(conn, q, n, types, values, lengths, formats, rf)
            };
            // SAFETY: as above; `q` is the caller's NUL-terminated statement.
            unsafe { statement(crate::guard::caller(), conn, q, f) }
        }
    )*};
    ($($name:ident: prepared $field:ident -> $ret:ty;)*) => {$(
        #[doc = concat!("# Safety\nCalled through the trampoline with the `", stringify!($field),
                        "` function's arguments and contract.")]
        unsafe extern "C" fn $name(
            conn: *mut PGconn,
            name: *const c_char,
            n: c_int,
            values: *const *const c_char,
            lengths: *const c_int,
            formats: *const c_int,
            rf: c_int,
        ) -> $ret {
            // SAFETY: forwarding the caller's arguments to this copy's function of the same
            // signature.
            let f = move |r: &PgReal| unsafe {
                (r.q.$field)(conn, name, n, values, lengths, formats, rf)
            };
            // SAFETY: as above; no statement text.
            unsafe { statement(crate::guard::caller(), conn, null(), f) }
        }
    )*};
}

hook_bodies! {
    pq_exec_params: params exec_params -> *mut PGresult;
    pq_send_query_params: params send_query_params -> c_int;
}
hook_bodies! {
    pq_exec_prepared: prepared exec_prepared -> *mut PGresult;
    pq_send_query_prepared: prepared send_query_prepared -> c_int;
}

/// # Safety
/// Called through the trampoline with `PQfinish`'s arguments and contract.
unsafe extern "C" fn pq_finish(conn: *mut PGconn, caller: usize) {
    use_check::forget(conn);
    // SAFETY: forwarding the caller's argument to this copy's function of the same signature.
    hook::pass(
        caller,
        "PQfinish",
        |r: &PgReal| unsafe { (r.q.finish)(conn) },
        || (),
    )
}
