//! libpq hooks: `PQconnectdb`, `PQconnectdbParams`, `PQconnectStart`, `PQconnectStartParams`,
//! `PQsetdbLogin`, on the skeleton of `hook.rs`. The rewrite: decide what can be decided without
//! the name (bypass, engine disabled) before parsing anything, else find the effective database
//! name (pure `core::conninfo`), decide (`decide`), call the real function with the rewritten
//! arguments. On any refusal or internal error the connect fails with a `dagz:` message made by
//! the real libpq, never the un-rerouted database.

use crate::conninfo::{self, PgEnv, RewriteError};
use crate::core::message;
use crate::cstr::bytes;
use crate::decide::Decider;
use crate::dlog;
use crate::guard::{self, Slot};
use crate::hook::{self, call_real, RealTable};
use crate::log::Level;
use crate::policy::Engine;
use crate::resolve::{Family, Lib};
use std::ffi::{c_char, c_int, c_void, CStr, CString};

pub(crate) type PGconn = c_void;
type ConnectdbFn = unsafe extern "C" fn(*const c_char) -> *mut PGconn;
type ParamsFn =
    unsafe extern "C" fn(*const *const c_char, *const *const c_char, c_int) -> *mut PGconn;
type SetdbLoginFn = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
    *const c_char,
) -> *mut PGconn;

/// The real entry points of one libpq copy.
pub struct PgReal {
    /// The statement entry points and `PQfinish` (`hooks_pg_query`).
    pub(crate) q: crate::hooks_pg_query::PgQuery,
    connectdb: ConnectdbFn,
    connectdb_params: ParamsFn,
    connect_start: ConnectdbFn,
    connect_start_params: ParamsFn,
    setdb_login: SetdbLoginFn,
}

fn build(lib: &Lib) -> Result<PgReal, String> {
    // SAFETY: each address is libpq's definition of that exported function in this copy, whose C
    // signature is the one of the target type (libpq-fe.h).
    unsafe {
        Ok(PgReal {
            q: crate::hooks_pg_query::PgQuery::build(lib)?,
            connectdb: std::mem::transmute::<usize, ConnectdbFn>(lib.sym("PQconnectdb")?),
            connectdb_params: std::mem::transmute::<usize, ParamsFn>(lib.sym("PQconnectdbParams")?),
            connect_start: std::mem::transmute::<usize, ConnectdbFn>(lib.sym("PQconnectStart")?),
            connect_start_params: std::mem::transmute::<usize, ParamsFn>(
                lib.sym("PQconnectStartParams")?,
            ),
            setdb_login: std::mem::transmute::<usize, SetdbLoginFn>(lib.sym("PQsetdbLogin")?),
        })
    }
}

/// Imports a libpq user binds next to the connect functions: where they point is the copy it uses.
const SIBLINGS: &[&str] = &[
    "PQfinish",
    "PQstatus",
    "PQerrorMessage",
    "PQconnectPoll",
    "PQsocket",
    "PQexec",
    "PQclear",
    "PQconninfoFree",
];

pub(crate) static PG: Family<PgReal> = Family::new(SIBLINGS, c"PQconnectStart", build);

impl RealTable for PgReal {
    const SLOT: Slot = Slot::Pg;
    fn family() -> &'static Family<PgReal> {
        &PG
    }
}

crate::trampoline_reg! {
    PQconnectdb => pq_connectdb, "rsi";
    PQconnectStart => pq_connect_start, "rsi";
    PQconnectdbParams => pq_connectdb_params, "rcx";
    PQconnectStartParams => pq_connect_start_params, "rcx";
}
crate::trampoline_tls! {
    PQsetdbLogin => pq_setdb_login;
}

/// The environment libpq itself would consult.
pub struct ProcessEnv;

impl PgEnv for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn os_user(&self) -> Option<String> {
        let mut pwd = std::mem::MaybeUninit::<libc::passwd>::zeroed();
        let mut buf = vec![0 as c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the sizes given; getpwuid_r writes `pwd` and strings
        // into `buf` and sets `out` to `pwd` on success.
        let rc = unsafe {
            libc::getpwuid_r(
                libc::geteuid(),
                pwd.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut out,
            )
        };
        if rc != 0 || out.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`, alive here.
        let name = unsafe { CStr::from_ptr((*out).pw_name) };
        Some(name.to_string_lossy().into_owned())
    }
    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

fn cstring(b: Vec<u8>) -> Result<CString, String> {
    CString::new(b).map_err(|_| "rewritten value contains a NUL byte".to_owned())
}

/// The decision for this connect, or `None` when it is decided without parsing (a keep).
///
/// # Safety
/// As [`Decider::start`]: dropped before the hook returns.
unsafe fn decider<'e>(via: &'static str) -> Option<Decider<'e>> {
    // SAFETY: the function's contract.
    unsafe { Decider::start(Engine::Postgres, via) }
}

/// The decision for `name`, the rerouted name also kept in `db` (for [`remember`]).
fn noted(
    d: &mut Decider<'_>,
    name: &str,
    db: &mut Option<String>,
) -> Result<Option<String>, String> {
    let r = d.decide(name);
    if let Ok(Some(new)) = &r {
        *db = Some(new.clone());
    }
    r
}

/// A connection rerouted to `db` is remembered for the per-test check (`use_check`).
fn remember(conn: *mut PGconn, db: Option<String>) -> *mut PGconn {
    if let Some(db) = db {
        crate::use_check::note(conn, Engine::Postgres, &db);
    }
    conn
}

fn rewrite_err(e: RewriteError) -> String {
    match e {
        RewriteError::Syntax(m) => format!("cannot parse the connection string: {m}"),
        RewriteError::Refused(m) => m,
    }
}

/// A conninfo that makes the real libpq fail before any network I/O, with `msg` in the error text
/// that `PQerrorMessage` (and so every driver) shows: `invalid sslmode value: "dagz: …"`.
fn fail_conninfo(msg: &str) -> CString {
    let one_line: String = msg
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let escaped = message::prefixed(&one_line)
        .replace('\\', "\\\\")
        .replace('\'', "\\'");
    CString::new(format!("sslmode='{escaped}'")).unwrap_or_default()
}

fn refuse_log(via: &str, msg: &str) {
    dlog!(Level::Error, "pg connect refused ({via}): {msg}");
}

/// The hook skeleton for libpq: a refusal is a connect that fails in the real libpq with the
/// message (or a NULL `PGconn`, libpq's "could not even allocate", when no copy may be called).
fn run(
    caller: usize,
    via: &'static str,
    start: bool,
    pass: impl FnOnce(&'static PgReal) -> *mut PGconn,
    rewrite: impl FnOnce(&'static PgReal) -> Result<Option<*mut PGconn>, String>,
) -> *mut PGconn {
    hook::run(caller, pass, rewrite, |real, msg| {
        let Some(real) = real else {
            refuse_log(via, &format!("no safe real {via}: {msg}"));
            return std::ptr::null_mut();
        };
        refuse_log(via, msg);
        let ci = fail_conninfo(msg);
        // SAFETY: `ci` is a valid NUL-terminated conninfo; the functions are this copy's.
        call_real(real, || unsafe {
            if start {
                (real.connect_start)(ci.as_ptr())
            } else {
                (real.connectdb)(ci.as_ptr())
            }
        })
    })
}

/// `PQconnectdb` / `PQconnectStart`.
///
/// # Safety
/// `conninfo` is NULL or a NUL-terminated string (libpq's contract).
unsafe fn conninfo_hook(
    conninfo: *const c_char,
    caller: usize,
    via: &'static str,
    start: bool,
) -> *mut PGconn {
    let pick = move |r: &PgReal| if start { r.connect_start } else { r.connectdb };
    // SAFETY: forwarding the caller's argument to this copy's function of the same signature.
    let pass = move |r: &PgReal| unsafe { pick(r)(conninfo) };
    run(caller, via, start, pass, move |real| {
        // SAFETY: the function's contract (above).
        let Some(ci) = (unsafe { bytes(conninfo) }) else {
            return Ok(None);
        };
        // SAFETY: `d` is dropped before the hook returns.
        let Some(mut d) = (unsafe { decider(via) }) else {
            return Ok(None);
        };
        d.with_settings(|| conninfo::settings_of_conninfo(ci).map(|s| s.block()));
        let mut db = None;
        let new = conninfo::rewrite_conninfo(ci, &ProcessEnv, &mut |n| noted(&mut d, n, &mut db))
            .map_err(rewrite_err)?;
        let Some(new) = new else { return Ok(None) };
        let new = cstring(new)?;
        // SAFETY: `new` is a NUL-terminated conninfo alive across the call; the function is
        // this copy's.
        let conn = call_real(real, || unsafe { pick(real)(new.as_ptr()) });
        Ok(Some(remember(conn, db)))
    })
}

/// # Safety
/// Called through the trampoline with `PQconnectdb`'s arguments and contract.
unsafe extern "C" fn pq_connectdb(conninfo: *const c_char, caller: usize) -> *mut PGconn {
    // SAFETY: the same contract.
    unsafe { conninfo_hook(conninfo, caller, "PQconnectdb", false) }
}

/// # Safety
/// Called through the trampoline with `PQconnectStart`'s arguments and contract.
unsafe extern "C" fn pq_connect_start(conninfo: *const c_char, caller: usize) -> *mut PGconn {
    // SAFETY: the same contract.
    unsafe { conninfo_hook(conninfo, caller, "PQconnectStart", true) }
}

/// Reads the NULL-terminated keyword array and its parallel value array.
///
/// # Safety
/// libpq's contract: `kw` is NULL or terminated by a NULL entry, `vals` is NULL or has at least
/// as many entries as `kw` before it; every string is NUL-terminated and outlives `'a`.
unsafe fn read_params<'a>(
    kw: *const *const c_char,
    vals: *const *const c_char,
) -> Vec<(&'a [u8], Option<&'a [u8]>)> {
    let mut out = Vec::new();
    if kw.is_null() {
        return out;
    }
    for i in 0.. {
        // SAFETY: the contract above; entries 0..i were not NULL, so entry i is in the array.
        let Some(k) = (unsafe { bytes(*kw.add(i)) }) else {
            break;
        };
        let v = if vals.is_null() {
            None
        } else {
            // SAFETY: `vals` has an entry for every non-NULL keyword.
            unsafe { bytes(*vals.add(i)) }
        };
        out.push((k, v));
    }
    out
}

/// New keyword and value arrays for the real call: the CStrings and the NULL-terminated pointer
/// arrays into them (valid while the first two live).
struct Arrays {
    _keys: Vec<CString>,
    _values: Vec<Option<CString>>,
    kp: Vec<*const c_char>,
    vp: Vec<*const c_char>,
}

fn arrays(new: conninfo::ParamList) -> Result<Arrays, String> {
    let mut keys = Vec::with_capacity(new.len());
    let mut values = Vec::with_capacity(new.len());
    for (k, v) in new {
        keys.push(cstring(k)?);
        values.push(v.map(cstring).transpose()?);
    }
    let mut kp: Vec<*const c_char> = keys.iter().map(|k| k.as_ptr()).collect();
    let mut vp: Vec<*const c_char> = values
        .iter()
        .map(|v| v.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
        .collect();
    kp.push(std::ptr::null());
    vp.push(std::ptr::null());
    Ok(Arrays {
        _keys: keys,
        _values: values,
        kp,
        vp,
    })
}

/// `PQconnectdbParams` / `PQconnectStartParams`.
///
/// # Safety
/// As [`read_params`].
unsafe fn params_hook(
    kw: *const *const c_char,
    vals: *const *const c_char,
    expand: c_int,
    caller: usize,
    via: &'static str,
    start: bool,
) -> *mut PGconn {
    let pick = move |r: &PgReal| {
        if start {
            r.connect_start_params
        } else {
            r.connectdb_params
        }
    };
    // SAFETY: forwarding the caller's arrays to this copy's function of the same signature.
    let pass = move |r: &PgReal| unsafe { pick(r)(kw, vals, expand) };
    run(caller, via, start, pass, move |real| {
        // SAFETY: `d` is dropped before the hook returns.
        let Some(mut d) = (unsafe { decider(via) }) else {
            return Ok(None);
        };
        // SAFETY: the function's contract (above).
        let params = unsafe { read_params(kw, vals) };
        d.with_settings(|| conninfo::settings_of_params(&params, expand != 0).map(|s| s.block()));
        let mut db = None;
        let mut decide = |n: &str| noted(&mut d, n, &mut db);
        let rewritten = conninfo::rewrite_params(&params, expand != 0, &ProcessEnv, &mut decide)
            .map_err(rewrite_err)?;
        let Some(new) = rewritten else {
            return Ok(None);
        };
        let a = arrays(new)?;
        // SAFETY: NULL-terminated arrays of NUL-terminated strings, alive across the call.
        let conn = call_real(real, || unsafe {
            pick(real)(a.kp.as_ptr(), a.vp.as_ptr(), expand)
        });
        Ok(Some(remember(conn, db)))
    })
}

/// # Safety
/// Called through the trampoline with `PQconnectdbParams`'s arguments and contract.
unsafe extern "C" fn pq_connectdb_params(
    kw: *const *const c_char,
    vals: *const *const c_char,
    expand: c_int,
    caller: usize,
) -> *mut PGconn {
    // SAFETY: the same contract.
    unsafe { params_hook(kw, vals, expand, caller, "PQconnectdbParams", false) }
}

/// # Safety
/// Called through the trampoline with `PQconnectStartParams`'s arguments and contract.
unsafe extern "C" fn pq_connect_start_params(
    kw: *const *const c_char,
    vals: *const *const c_char,
    expand: c_int,
    caller: usize,
) -> *mut PGconn {
    // SAFETY: the same contract.
    unsafe { params_hook(kw, vals, expand, caller, "PQconnectStartParams", true) }
}

/// # Safety
/// Called through the trampoline with `PQsetdbLogin`'s arguments and contract: every string
/// argument is NULL or NUL-terminated.
unsafe extern "C" fn pq_setdb_login(
    host: *const c_char,
    port: *const c_char,
    options: *const c_char,
    tty: *const c_char,
    db: *const c_char,
    login: *const c_char,
    pwd: *const c_char,
) -> *mut PGconn {
    let via = "PQsetdbLogin";
    // SAFETY: forwarding the caller's arguments to this copy's function of the same signature.
    let pass =
        move |r: &PgReal| unsafe { (r.setdb_login)(host, port, options, tty, db, login, pwd) };
    run(guard::caller(), via, false, pass, move |real| {
        // SAFETY: `d` is dropped before the hook returns.
        let Some(mut d) = (unsafe { decider(via) }) else {
            return Ok(None);
        };
        // SAFETY: the function's contract (above).
        let (db_b, login_b) = unsafe { (bytes(db), bytes(login)) };
        d.with_settings(|| {
            // SAFETY: the function's contract (above).
            let args = unsafe { [bytes(host), bytes(port), bytes(options), db_b, login_b] };
            // SAFETY: as above.
            let pwd = unsafe { bytes(pwd) };
            let [h, p, o, d, l] = args;
            conninfo::settings_of_setdb([h, p, o, d, l, pwd]).map(|s| s.block())
        });
        let mut rerouted = None;
        let mut decide = |n: &str| noted(&mut d, n, &mut rerouted);
        let new = conninfo::rewrite_setdb(db_b, login_b, &ProcessEnv, &mut decide)
            .map_err(rewrite_err)?;
        let Some(new) = new else { return Ok(None) };
        let new = cstring(new)?;
        // SAFETY: the caller's arguments, `db` replaced by a CString alive across the call.
        let conn = call_real(real, || unsafe {
            (real.setdb_login)(host, port, options, tty, new.as_ptr(), login, pwd)
        });
        Ok(Some(remember(conn, rerouted)))
    })
}
