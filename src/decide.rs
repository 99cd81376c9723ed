//! The decision for one connect: bypass, policy (file + env, cached), worker number (read at every
//! connect: pytest-xdist sets it after the process started), and the optional decision callback the
//! Python package registers.

use crate::dlog;
use crate::guard;
use crate::log::Level;
use crate::policy::{Decision, Engine, Policy, Worker};
use parking_lot::Mutex;
use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// `int cb(int engine, const char *name, char *out, size_t out_len)`; see `shim/dagz.h`.
pub type DecisionCallback = unsafe extern "C" fn(
    engine: c_int,
    name: *const c_char,
    out: *mut c_char,
    out_len: usize,
) -> c_int;

pub const CB_KEEP: c_int = 0;
pub const CB_REROUTE: c_int = 1;
pub const CB_DEFAULT: c_int = 2;
pub const CB_ERROR: c_int = -1;
const CB_BUF: usize = 4096;

static CALLBACK: AtomicUsize = AtomicUsize::new(0);

pub fn set_callback(cb: Option<DecisionCallback>) {
    CALLBACK.store(cb.map_or(0, |f| f as usize), Ordering::SeqCst);
}

fn callback() -> Option<DecisionCallback> {
    let p = CALLBACK.load(Ordering::SeqCst);
    // SAFETY: the only non-zero values ever stored are `DecisionCallback` function pointers.
    (p != 0).then(|| unsafe { std::mem::transmute::<usize, DecisionCallback>(p) })
}

pub fn engine_code(e: Engine) -> c_int {
    match e {
        Engine::Postgres => 1,
        Engine::Mysql => 2,
    }
}

pub fn engine_from_code(c: c_int) -> Option<Engine> {
    match c {
        1 => Some(Engine::Postgres),
        2 => Some(Engine::Mysql),
        _ => None,
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The policy file (`DAGZ_POLICY`) is parsed once per distinct path; env overrides (`DAGZ_DISABLE`)
/// are applied at every call because tests may change them at run time.
/// (DAGZ_POLICY value it was loaded for, the parsed policy or the error).
type PolicyCache = Option<(Option<String>, Result<Arc<Policy>, String>)>;
static FILE_POLICY: Mutex<PolicyCache> = Mutex::new(None);

pub fn policy() -> Result<Policy, String> {
    let path = env_var("DAGZ_POLICY").filter(|p| !p.is_empty());
    let base = {
        let mut cache = FILE_POLICY.lock();
        match cache.as_ref() {
            Some((p, r)) if *p == path => r.clone(),
            _ => {
                let r = match &path {
                    None => Ok(Arc::new(Policy::default())),
                    Some(p) => match std::fs::read_to_string(p) {
                        Ok(text) => Policy::from_toml(&text, p).map(Arc::new),
                        Err(e) => Err(format!("policy file {p}: {e}")),
                    },
                };
                *cache = Some((path, r.clone()));
                r
            }
        }
    }?;
    Policy::clone(&base).with_env(&env_var)
}

pub fn worker() -> Result<Worker, String> {
    crate::policy::worker_from_env(&env_var)
}

fn strip_dagz(s: &str) -> &str {
    s.strip_prefix("dagz: ").unwrap_or(s)
}

/// The whole decision for the effective database `name` of one connect through `via`.
/// `Ok(None)`: connect to `name` unchanged. `Err`: refuse the connect (message without `dagz:`).
pub fn decide(engine: Engine, name: &str, via: &str) -> Result<Option<String>, String> {
    if guard::bypass_depth() > 0 {
        dlog!(
            Level::Debug,
            "{}: {name} kept (thread bypass) via {via}",
            engine.label()
        );
        return Ok(None);
    }
    if guard::in_callback() {
        dlog!(
            Level::Debug,
            "{}: {name} kept (connect from inside the decision callback) via {via}",
            engine.label()
        );
        return Ok(None);
    }
    let policy = policy().map_err(|e| strip_dagz(&e).to_owned())?;
    if !policy.enabled(engine) {
        dlog!(
            Level::Debug,
            "{}: {name} kept (engine disabled) via {via}",
            engine.label()
        );
        return Ok(None);
    }
    let worker = worker()?;
    if let Some(cb) = callback() {
        match call_back(cb, engine, name)? {
            CbAnswer::Keep => {
                dlog!(
                    Level::Debug,
                    "{}: {name} kept (callback) via {via}",
                    engine.label()
                );
                return Ok(None);
            }
            CbAnswer::Reroute(new) => {
                if new.len() > engine.max_name_len() {
                    return Err(format!(
                        "rerouted name {new:?} is {} bytes, over the {}-byte limit of {}",
                        new.len(),
                        engine.max_name_len(),
                        engine.label()
                    ));
                }
                dlog!(
                    Level::Info,
                    "{}: {name} -> {new} (worker {}, callback) via {via}",
                    engine.label(),
                    worker.num
                );
                return Ok((new != name).then_some(new));
            }
            CbAnswer::Default => {}
        }
    }
    match policy
        .decide(engine, name, &worker)
        .map_err(|e| strip_dagz(&e).to_owned())?
    {
        Decision::Keep(why) => {
            dlog!(
                Level::Debug,
                "{}: {name} kept ({why:?}) via {via}",
                engine.label()
            );
            Ok(None)
        }
        Decision::Reroute(new) => {
            dlog!(
                Level::Info,
                "{}: {name} -> {new} (worker {}) via {via}",
                engine.label(),
                worker.num
            );
            Ok(Some(new))
        }
    }
}

enum CbAnswer {
    Keep,
    Reroute(String),
    Default,
}

fn call_back(cb: DecisionCallback, engine: Engine, name: &str) -> Result<CbAnswer, String> {
    let cname = CString::new(name).map_err(|_| "database name contains a NUL byte".to_owned())?;
    let mut buf = vec![0u8; CB_BUF];
    let rc = {
        let _g = guard::enter_callback();
        // SAFETY: `cb` was registered through dagz_set_decision_callback with this signature;
        // `cname` is NUL-terminated and `buf` is writable for CB_BUF bytes. No lock is held here.
        unsafe {
            cb(
                engine_code(engine),
                cname.as_ptr(),
                buf.as_mut_ptr().cast(),
                CB_BUF - 1,
            )
        }
    };
    let text = {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(CB_BUF - 1);
        String::from_utf8_lossy(&buf[..end]).into_owned()
    };
    match rc {
        CB_KEEP => Ok(CbAnswer::Keep),
        CB_REROUTE if text.is_empty() => Err("decision callback returned an empty name".into()),
        CB_REROUTE => Ok(CbAnswer::Reroute(text)),
        CB_DEFAULT => Ok(CbAnswer::Default),
        CB_ERROR if text.is_empty() => Err("decision callback failed".into()),
        CB_ERROR => Err(strip_dagz(&text).to_owned()),
        other => Err(format!("decision callback returned unknown code {other}")),
    }
}
