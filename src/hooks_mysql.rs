//! MySQL/MariaDB client hooks (issue 3): the `db` of `mysql_real_connect`,
//! `mysql_select_db`, `mysql_change_user` and their non-blocking `*_start` variants. The statement
//! hooks (`USE` and everything else that can change the database) are in `hooks_mysql_stmt`.
//! Same resolution (sibling `mysql_close`), policy, bypass, callback and fail-closed rules as libpq.
//! A refusal fails the call and puts `dagz: …` into the handle's error text (what `mysql_error()`
//! and the Python drivers show).

use crate::core::message;
use crate::cstr::bytes;
use crate::decide;
use crate::dlog;
use crate::guard::{self, Slot};
use crate::hook::{self, call_real as call, RealTable};
use crate::log::Level;
use crate::mysql_settings as ms;
use crate::policy::Engine;
use crate::resolve::{Family, Lib};
use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CString};

pub(crate) type Mysql = c_void;
type MyBool = c_char;
type RealConnectFn = unsafe extern "C" fn(
    *mut Mysql,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    c_uint,
    *const c_char,
    c_ulong,
) -> *mut Mysql;
type RealConnectStartFn = unsafe extern "C" fn(
    *mut *mut Mysql,
    *mut Mysql,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    c_uint,
    *const c_char,
    c_ulong,
) -> c_int;
type SelectDbFn = unsafe extern "C" fn(*mut Mysql, *const c_char) -> c_int;
type SelectDbStartFn = unsafe extern "C" fn(*mut c_int, *mut Mysql, *const c_char) -> c_int;
type ChangeUserFn =
    unsafe extern "C" fn(*mut Mysql, *const c_char, *const c_char, *const c_char) -> MyBool;
type ChangeUserStartFn = unsafe extern "C" fn(
    *mut MyBool,
    *mut Mysql,
    *const c_char,
    *const c_char,
    *const c_char,
) -> c_int;
pub(crate) type QueryFn = unsafe extern "C" fn(*mut Mysql, *const c_char) -> c_int;
pub(crate) type RealQueryFn = unsafe extern "C" fn(*mut Mysql, *const c_char, c_ulong) -> c_int;
/// `mysql_stmt_prepare` (`unsigned long` length) and `mariadb_stmt_execute_direct` (`size_t`):
/// the same registers on x86_64.
pub(crate) type StmtPrepareFn = unsafe extern "C" fn(*mut c_void, *const c_char, c_ulong) -> c_int;
pub(crate) type ErrorFn = unsafe extern "C" fn(*mut Mysql) -> *const c_char;
pub(crate) type ErrnoFn = unsafe extern "C" fn(*mut Mysql) -> c_uint;
pub(crate) type CloseFn = unsafe extern "C" fn(*mut Mysql);

/// The result-set entry points the `CALL` check reads a procedure's body with
/// (`hooks_mysql_call`): `mysql_store_result`, `mysql_fetch_row`, `mysql_fetch_lengths`,
/// `mysql_free_result` (`MYSQL_RES *` as `*mut c_void`).
#[derive(Clone, Copy)]
pub(crate) struct ResultFns {
    pub store: StoreResultFn,
    pub fetch_row: FetchRowFn,
    pub lengths: FetchLengthsFn,
    pub free: FreeResultFn,
}
type StoreResultFn = unsafe extern "C" fn(*mut Mysql) -> *mut c_void;
type FetchRowFn = unsafe extern "C" fn(*mut c_void) -> *mut *mut c_char;
type FetchLengthsFn = unsafe extern "C" fn(*mut c_void) -> *mut c_ulong;
type FreeResultFn = unsafe extern "C" fn(*mut c_void);

/// The real entry points of one client library copy. The `*_start` functions exist only in
/// libmariadb; a libmysqlclient copy has `None` there.
pub struct MyReal {
    real_connect: RealConnectFn,
    select_db: SelectDbFn,
    change_user: ChangeUserFn,
    pub(crate) query: QueryFn,
    pub(crate) real_query: RealQueryFn,
    pub(crate) send_query: RealQueryFn,
    pub(crate) error: ErrorFn,
    pub(crate) errno: ErrnoFn,
    pub(crate) close: CloseFn,
    /// The prepared-statement entry points; `MYSQL_STMT` handles have their own error text.
    pub(crate) stmt_prepare: Option<StmtPrepareFn>,
    pub(crate) stmt_execute_direct: Option<StmtPrepareFn>,
    pub(crate) stmt_error: Option<ErrorFn>,
    pub(crate) stmt_errno: Option<ErrnoFn>,
    real_connect_start: Option<RealConnectStartFn>,
    select_db_start: Option<SelectDbStartFn>,
    change_user_start: Option<ChangeUserStartFn>,
    pub(crate) results: Option<ResultFns>,
}

fn build(lib: &Lib) -> Result<MyReal, String> {
    // SAFETY: each address is the client library's definition of that exported function in this
    // copy, whose C signature is the target type's (mysql.h).
    unsafe {
        use std::mem::transmute as t;
        Ok(MyReal {
            real_connect: t::<usize, RealConnectFn>(lib.sym("mysql_real_connect")?),
            select_db: t::<usize, SelectDbFn>(lib.sym("mysql_select_db")?),
            change_user: t::<usize, ChangeUserFn>(lib.sym("mysql_change_user")?),
            query: t::<usize, QueryFn>(lib.sym("mysql_query")?),
            real_query: t::<usize, RealQueryFn>(lib.sym("mysql_real_query")?),
            send_query: t::<usize, RealQueryFn>(lib.sym("mysql_send_query")?),
            error: t::<usize, ErrorFn>(lib.sym("mysql_error")?),
            errno: t::<usize, ErrnoFn>(lib.sym("mysql_errno")?),
            close: t::<usize, CloseFn>(lib.sym("mysql_close")?),
            stmt_prepare: lib
                .sym("mysql_stmt_prepare")
                .ok()
                .map(|p| t::<usize, StmtPrepareFn>(p)),
            stmt_execute_direct: lib
                .sym("mariadb_stmt_execute_direct")
                .ok()
                .map(|p| t::<usize, StmtPrepareFn>(p)),
            stmt_error: lib
                .sym("mysql_stmt_error")
                .ok()
                .map(|p| t::<usize, ErrorFn>(p)),
            stmt_errno: lib
                .sym("mysql_stmt_errno")
                .ok()
                .map(|p| t::<usize, ErrnoFn>(p)),
            real_connect_start: lib
                .sym("mysql_real_connect_start")
                .ok()
                .map(|p| t::<usize, RealConnectStartFn>(p)),
            select_db_start: lib
                .sym("mysql_select_db_start")
                .ok()
                .map(|p| t::<usize, SelectDbStartFn>(p)),
            change_user_start: lib
                .sym("mysql_change_user_start")
                .ok()
                .map(|p| t::<usize, ChangeUserStartFn>(p)),
            results: (|| {
                Some(ResultFns {
                    store: t::<usize, StoreResultFn>(lib.sym("mysql_store_result").ok()?),
                    fetch_row: t::<usize, FetchRowFn>(lib.sym("mysql_fetch_row").ok()?),
                    lengths: t::<usize, FetchLengthsFn>(lib.sym("mysql_fetch_lengths").ok()?),
                    free: t::<usize, FreeResultFn>(lib.sym("mysql_free_result").ok()?),
                })
            })(),
        })
    }
}

const SIBLINGS: &[&str] = &[
    "mysql_close",
    "mysql_init",
    "mysql_error",
    "mysql_errno",
    "mysql_options",
    "mysql_store_result",
    "mysql_free_result",
];

pub(crate) static MY: Family<MyReal> = Family::new(SIBLINGS, c"mysql_real_connect", build);

impl RealTable for MyReal {
    const SLOT: Slot = Slot::Mysql;
    fn family() -> &'static Family<MyReal> {
        &MY
    }
}

crate::trampoline_tls! {
    mysql_real_connect => my_real_connect;
    mysql_real_connect_start => my_real_connect_start;
}
crate::trampoline_reg! {
    mysql_select_db => my_select_db, "rdx";
    mysql_select_db_start => my_select_db_start, "rcx";
    mysql_change_user => my_change_user, "r8";
    mysql_change_user_start => my_change_user_start, "r9";
}

/// Client error code put on a handle whose call dagz refused (CR_UNKNOWN_ERROR: the drivers map
/// 2000–2999 to OperationalError).
pub(crate) const CR_UNKNOWN_ERROR: c_uint = 2000;
pub(crate) const MYSQL_ERRMSG_SIZE: usize = 512;

/// Puts `dagz: msg` into the handle's error text and CR_UNKNOWN_ERROR into its error code, using
/// only what the public API exposes: `mysql_error()` returns the address of `NET.last_error`, and
/// `NET.last_errno` sits 7 bytes before it (both libmariadb 3 and libmysqlclient keep this public
/// layout); the code is written only if reading it there agrees with `mysql_errno()`.
///
/// # Safety
/// `mysql` is NULL or a handle initialised by `mysql_init` of `real`'s copy.
pub(crate) unsafe fn set_error(real: &MyReal, mysql: *mut Mysql, msg: &str) {
    // SAFETY: the function's contract.
    unsafe { set_handle_error(mysql, real.error, real.errno, 7, msg) }
}

/// [`set_error`] for any handle whose `error(h)` returns its in-struct `last_error` buffer with
/// the error code `errno_back` bytes before it (`MYSQL`: 7, `MYSQL_STMT`: 4).
///
/// # Safety
/// `h` is NULL or a handle that `error` and `errno` accept.
pub(crate) unsafe fn set_handle_error(
    h: *mut c_void,
    error: ErrorFn,
    errno: ErrnoFn,
    errno_back: usize,
    msg: &str,
) {
    dlog!(Level::Error, "mysql call refused: {msg}");
    if h.is_null() {
        return;
    }
    // SAFETY: `h` is an initialised handle (the function's contract); `error` returns a pointer
    // into it.
    let buf = unsafe { error(h) } as *mut u8;
    let (lo, hi) = (h as usize, h as usize + 4096);
    if buf.is_null() || (buf as usize) < lo + errno_back || (buf as usize) + MYSQL_ERRMSG_SIZE > hi
    {
        return; // not the in-struct buffer we know: write nothing rather than guess
    }
    let text = message::prefixed(msg);
    let n = text.len().min(MYSQL_ERRMSG_SIZE - 1);
    // SAFETY: `buf` is the handle's last_error, a char[MYSQL_ERRMSG_SIZE] inside *h (checked
    // above); n < MYSQL_ERRMSG_SIZE.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf, n);
        *buf.add(n) = 0;
    }
    let errno_at = (buf as usize - errno_back) as *mut c_uint;
    // SAFETY: errno_at lies inside *h (buf - errno_back ≥ h); unaligned access is explicit.
    unsafe {
        if std::ptr::read_unaligned(errno_at) == errno(h) {
            std::ptr::write_unaligned(errno_at, CR_UNKNOWN_ERROR);
        }
    }
}

/// The decision for a `db` argument: `Ok(None)` = pass the argument unchanged.
///
/// # Safety
/// `db` is NULL or NUL-terminated (the client API's contract).
unsafe fn rewrite_db(
    db: *const c_char,
    via: &'static str,
    settings: &dyn Fn() -> Vec<u8>,
) -> Result<Option<CString>, String> {
    // SAFETY: the function's contract.
    let Some(d) = (unsafe { bytes(db) }) else {
        return Ok(None);
    };
    if d.is_empty() {
        return Ok(None);
    }
    let name = std::str::from_utf8(d).map_err(|_| "database name is not UTF-8".to_owned())?;
    match decide::decide_with(Engine::Mysql, name, via, settings)? {
        None => Ok(None),
        Some(new) => CString::new(new)
            .map(Some)
            .map_err(|_| "rerouted name contains a NUL byte".to_owned()),
    }
}

/// Rewritten `db` strings of non-blocking operations, per handle. libmariadb's `*_start` functions
/// keep the `db` pointer until the operation completes in a later `*_cont` call, so the string must
/// outlive the hook; it is replaced by the handle's next operation (bounded by live handles).
static ASYNC_DB: parking_lot::Mutex<Option<std::collections::HashMap<usize, CString>>> =
    parking_lot::Mutex::new(None);

fn keep_alive(mysql: *mut Mysql, db: CString) -> *const c_char {
    let p = db.as_ptr(); // the heap buffer does not move when the CString is moved into the map
    ASYNC_DB
        .lock()
        .get_or_insert_with(Default::default)
        .insert(mysql as usize, db);
    p
}

/// Shared body of the hooks that carry a `db` argument, on the skeleton of `hook.rs`. `run(db)`
/// calls the real function with `db`; on a refusal the handle gets the `dagz:` error and `fail()`
/// returns the function's own failure value (and sets its out-parameter). `nonblocking`: the call
/// is a `*_start` whose `db` must stay valid after it returns. `settings`: for the callback.
///
/// # Safety
/// `db` is NULL or NUL-terminated; `mysql` is NULL or a handle initialised by `mysql_init`.
#[allow(clippy::too_many_arguments)]
unsafe fn db_hook<R>(
    caller: usize,
    via: &'static str,
    mysql: *mut Mysql,
    nonblocking: bool,
    db: *const c_char,
    settings: &dyn Fn() -> Vec<u8>,
    run: impl Fn(&'static MyReal, *const c_char) -> R,
    fail: impl FnOnce() -> R,
) -> R {
    let run = &run;
    hook::run(
        caller,
        |real| run(real, db),
        |real| {
            // SAFETY: the function's contract.
            let Some(new) = (unsafe { rewrite_db(db, via, settings) })? else {
                // SAFETY: as above. A handle moved to a database dagz keeps needs no check.
                if unsafe { bytes(db) }.is_some_and(|d| !d.is_empty()) {
                    crate::use_check::forget(mysql);
                }
                return Ok(None);
            };
            crate::use_check::note(mysql, Engine::Mysql, &new.to_string_lossy());
            Ok(Some(if nonblocking {
                let p = keep_alive(mysql, new);
                call(real, || run(real, p))
            } else {
                call(real, || run(real, new.as_ptr()))
            }))
        },
        |real, msg| {
            match real {
                // SAFETY: the function's contract.
                Some(real) => unsafe { set_error(real, mysql, msg) },
                None => dlog!(Level::Error, "no safe real {via}: {msg}"),
            }
            fail()
        },
    )
}

/// The failure of a `*_start` function: its out-parameter set to `value`, and 0 ("finished, no
/// wait needed").
///
/// # Safety
/// `ret` is NULL or the caller's writable out-pointer.
unsafe fn fail_start<T>(ret: *mut T, value: T) -> c_int {
    if !ret.is_null() {
        // SAFETY: the function's contract.
        unsafe { *ret = value };
    }
    0
}

/// # Safety
/// Called through the trampoline with `mysql_real_connect`'s arguments and contract.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn my_real_connect(
    mysql: *mut Mysql,
    host: *const c_char,
    user: *const c_char,
    passwd: *const c_char,
    db: *const c_char,
    port: c_uint,
    unix_socket: *const c_char,
    flags: c_ulong,
) -> *mut Mysql {
    // SAFETY: the same contract: every string argument is NULL or NUL-terminated.
    let settings = unsafe { ms::on_connect(mysql, host, user, passwd, port, unix_socket) };
    // SAFETY: the same contract; `run` forwards the caller's arguments (db possibly replaced by
    // a live CString) to this copy's function of the same signature.
    unsafe {
        db_hook(
            guard::caller(),
            "mysql_real_connect",
            mysql,
            false,
            db,
            &settings,
            |r, db| (r.real_connect)(mysql, host, user, passwd, db, port, unix_socket, flags),
            std::ptr::null_mut,
        )
    }
}

/// # Safety
/// Called through the trampoline with `mysql_real_connect_start`'s arguments and contract.
#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn my_real_connect_start(
    ret: *mut *mut Mysql,
    mysql: *mut Mysql,
    host: *const c_char,
    user: *const c_char,
    passwd: *const c_char,
    db: *const c_char,
    port: c_uint,
    unix_socket: *const c_char,
    flags: c_ulong,
) -> c_int {
    // SAFETY: the same contract: every string argument is NULL or NUL-terminated.
    let settings = unsafe { ms::on_connect(mysql, host, user, passwd, port, unix_socket) };
    // SAFETY: as in `my_real_connect`; `ret` is the caller's out-pointer.
    unsafe {
        db_hook(
            guard::caller(),
            "mysql_real_connect_start",
            mysql,
            true,
            db,
            &settings,
            |r, db| match r.real_connect_start {
                Some(f) => f(ret, mysql, host, user, passwd, db, port, unix_socket, flags),
                None => 0,
            },
            || fail_start(ret, std::ptr::null_mut()),
        )
    }
}

/// # Safety
/// Called through the trampoline with `mysql_select_db`'s arguments and contract.
unsafe extern "C" fn my_select_db(mysql: *mut Mysql, db: *const c_char, caller: usize) -> c_int {
    // SAFETY: as in `my_real_connect`.
    unsafe {
        db_hook(
            caller,
            "mysql_select_db",
            mysql,
            false,
            db,
            &|| ms::handle(mysql),
            |r, db| (r.select_db)(mysql, db),
            || 1,
        )
    }
}

/// # Safety
/// Called through the trampoline with `mysql_select_db_start`'s arguments and contract.
unsafe extern "C" fn my_select_db_start(
    ret: *mut c_int,
    mysql: *mut Mysql,
    db: *const c_char,
    caller: usize,
) -> c_int {
    // SAFETY: as in `my_real_connect_start`.
    unsafe {
        db_hook(
            caller,
            "mysql_select_db_start",
            mysql,
            true,
            db,
            &|| ms::handle(mysql),
            |r, db| r.select_db_start.map_or(0, |f| f(ret, mysql, db)),
            || fail_start(ret, 1),
        )
    }
}

/// # Safety
/// Called through the trampoline with `mysql_change_user`'s arguments and contract.
unsafe extern "C" fn my_change_user(
    mysql: *mut Mysql,
    user: *const c_char,
    passwd: *const c_char,
    db: *const c_char,
    caller: usize,
) -> MyBool {
    // SAFETY: as in `my_real_connect`.
    unsafe {
        db_hook(
            caller,
            "mysql_change_user",
            mysql,
            false,
            db,
            &|| ms::changed_user_settings(mysql, user, passwd),
            |r, db| (r.change_user)(mysql, user, passwd, db),
            || 1,
        )
    }
}

/// # Safety
/// Called through the trampoline with `mysql_change_user_start`'s arguments and contract.
unsafe extern "C" fn my_change_user_start(
    ret: *mut MyBool,
    mysql: *mut Mysql,
    user: *const c_char,
    passwd: *const c_char,
    db: *const c_char,
    caller: usize,
) -> c_int {
    // SAFETY: as in `my_real_connect_start`.
    unsafe {
        db_hook(
            caller,
            "mysql_change_user_start",
            mysql,
            true,
            db,
            &|| ms::changed_user_settings(mysql, user, passwd),
            |r, db| {
                r.change_user_start
                    .map_or(0, |f| f(ret, mysql, user, passwd, db))
            },
            || fail_start(ret, 1),
        )
    }
}
