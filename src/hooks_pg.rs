//! libpq hooks: `PQconnectdb`, `PQconnectdbParams`, `PQconnectStart`, `PQconnectStartParams`,
//! `PQsetdbLogin`. Each body: pass inner calls of libpq to its own exports straight through to the
//! same copy (notes §4); find the copy this call site uses (notes §3); rewrite the effective database
//! name (pure `conninfo` module + `decide`); call the real function. On any refusal or internal error
//! the connect fails with a `dagz:` message made by the real libpq, never the un-rerouted database.

use crate::boundary;
use crate::conninfo::{self, PgEnv, RewriteError};
use crate::cstr::bytes;
use crate::decide;
use crate::dlog;
use crate::guard::{self, Slot};
use crate::log::Level;
use crate::policy::Engine;
use crate::resolve::{Family, Lib};
use std::ffi::{c_char, c_int, c_void, CStr, CString};

type PGconn = c_void;
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

static PG: Family<PgReal> = Family::new(SIBLINGS, c"PQconnectStart", build);

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

fn decider(via: &'static str) -> impl FnMut(&str) -> Result<Option<String>, String> {
    move |name| decide::decide(Engine::Postgres, name, via)
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
    let escaped = one_line.replace('\\', "\\\\").replace('\'', "\\'");
    CString::new(format!("sslmode='dagz: {escaped}'")).unwrap_or_default()
}

fn refuse_log(via: &str, msg: &str) {
    dlog!(Level::Error, "pg connect refused ({via}): {msg}");
}

/// Shared shape of every hook body. `pass` calls the real function with the original arguments,
/// `rewrite` computes new arguments and calls the real function with them (or returns `Ok(None)`).
unsafe fn run(
    caller: usize,
    via: &'static str,
    start: bool,
    pass: impl Fn(&PgReal) -> *mut PGconn,
    rewrite: impl FnOnce(&'static PgReal) -> Result<Option<*mut PGconn>, String>,
) -> *mut PGconn {
    let inside = guard::inside(Slot::Pg);
    if inside != 0 {
        // SAFETY: non-zero INSIDE values are `&'static PgReal` set by this function below.
        return pass(unsafe { &*(inside as *const PgReal) });
    }
    let real = match boundary::catch(|| PG.for_caller(caller)) {
        Ok(r) => r,
        Err(e) => {
            // No copy we may safely call: a NULL PGconn is libpq's "could not even allocate".
            refuse_log(via, &format!("no safe real {via}: {e}"));
            return std::ptr::null_mut();
        }
    };
    if guard::bypass_depth() > 0 {
        return call_real(real, || pass(real));
    }
    match boundary::catch(|| rewrite(real)) {
        Ok(Some(conn)) => conn,
        Ok(None) => call_real(real, || pass(real)),
        Err(msg) => {
            refuse_log(via, &msg);
            let ci = fail_conninfo(&msg);
            // SAFETY: `ci` is a valid NUL-terminated conninfo; the functions are this copy's.
            call_real(real, || unsafe {
                if start {
                    (real.connect_start)(ci.as_ptr())
                } else {
                    (real.connectdb)(ci.as_ptr())
                }
            })
        }
    }
}

/// Calls `f` marked as inside the real functions of `real`.
fn call_real(real: &'static PgReal, f: impl FnOnce() -> *mut PGconn) -> *mut PGconn {
    guard::inside_call(Slot::Pg, real as *const PgReal as usize, f)
}

unsafe fn conninfo_hook(
    conninfo: *const c_char,
    caller: usize,
    via: &'static str,
    start: bool,
) -> *mut PGconn {
    let pick = move |r: &PgReal| if start { r.connect_start } else { r.connectdb };
    // SAFETY (closures): `conninfo` is the caller's argument, forwarded unchanged or replaced by a
    // CString that lives across the call.
    let pass = move |r: &PgReal| unsafe { pick(r)(conninfo) };
    run(caller, via, start, pass, move |real| {
        let Some(ci) = bytes(conninfo) else {
            return Ok(None);
        };
        match conninfo::rewrite_conninfo(ci, &ProcessEnv, &mut decider(via)).map_err(rewrite_err)? {
            None => Ok(None),
            Some(new) => {
                let new = cstring(new)?;
                Ok(Some(call_real(real, || unsafe {
                    pick(real)(new.as_ptr())
                })))
            }
        }
    })
}

unsafe extern "C" fn pq_connectdb(conninfo: *const c_char, caller: usize) -> *mut PGconn {
    conninfo_hook(conninfo, caller, "PQconnectdb", false)
}

unsafe extern "C" fn pq_connect_start(conninfo: *const c_char, caller: usize) -> *mut PGconn {
    conninfo_hook(conninfo, caller, "PQconnectStart", true)
}

/// Reads the NULL-terminated keyword array and its parallel value array.
unsafe fn read_params<'a>(
    kw: *const *const c_char,
    vals: *const *const c_char,
) -> Vec<(&'a [u8], Option<&'a [u8]>)> {
    let mut out = Vec::new();
    if kw.is_null() {
        return out;
    }
    for i in 0.. {
        // SAFETY: libpq's contract: `keywords` is terminated by a NULL entry and `values` has at
        // least as many entries as `keywords` before it.
        let k = unsafe { *kw.add(i) };
        let Some(k) = bytes(k) else { break };
        let v = if vals.is_null() {
            None
        } else {
            bytes(unsafe { *vals.add(i) })
        };
        out.push((k, v));
    }
    out
}

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
    // SAFETY (closures): forwarding the caller's arrays, or arrays of CStrings alive across the call.
    let pass = move |r: &PgReal| unsafe { pick(r)(kw, vals, expand) };
    run(caller, via, start, pass, move |real| {
        let params = unsafe { read_params(kw, vals) };
        let rewritten =
            conninfo::rewrite_params(&params, expand != 0, &ProcessEnv, &mut decider(via))
                .map_err(rewrite_err)?;
        let Some(new) = rewritten else {
            return Ok(None);
        };
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
        Ok(Some(call_real(real, || unsafe {
            pick(real)(kp.as_ptr(), vp.as_ptr(), expand)
        })))
    })
}

unsafe extern "C" fn pq_connectdb_params(
    kw: *const *const c_char,
    vals: *const *const c_char,
    expand: c_int,
    caller: usize,
) -> *mut PGconn {
    params_hook(kw, vals, expand, caller, "PQconnectdbParams", false)
}

unsafe extern "C" fn pq_connect_start_params(
    kw: *const *const c_char,
    vals: *const *const c_char,
    expand: c_int,
    caller: usize,
) -> *mut PGconn {
    params_hook(kw, vals, expand, caller, "PQconnectStartParams", true)
}

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
    // SAFETY (closures): forwarding the caller's arguments, or a CString alive across the call.
    let pass =
        move |r: &PgReal| unsafe { (r.setdb_login)(host, port, options, tty, db, login, pwd) };
    run(guard::caller(), via, false, pass, move |real| {
        let new = conninfo::rewrite_setdb(bytes(db), bytes(login), &ProcessEnv, &mut decider(via))
            .map_err(rewrite_err)?;
        let Some(new) = new else { return Ok(None) };
        let new = cstring(new)?;
        Ok(Some(call_real(real, || unsafe {
            (real.setdb_login)(host, port, options, tty, new.as_ptr(), login, pwd)
        })))
    })
}
