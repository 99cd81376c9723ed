//! The decision for one connect: bypass, policy (file + env, cached), worker number (read at every
//! connect: pytest-xdist sets it after the process started), and the optional decision callback the
//! Python package registers.

use crate::dlog;
use crate::guard;
use crate::log::Level;
use crate::policy::{Decision, Engine, Policy, Worker};
use parking_lot::Mutex;
use std::ffi::{c_char, c_int, CStr, CString};
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

/// The variables the decision reads, taken in one pass over `environ` (a `getenv` per variable,
/// six of them, cost more than the rest of the decision).
const ENV_NAMES: [&str; 6] = [
    "DAGZ_POLICY",
    "DAGZ_DISABLE",
    "DAGZ_WORKER",
    "DAGZ_WORKER_COUNT",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
];

pub struct EnvSnapshot([Option<String>; 6]);

extern "C" {
    static environ: *const *const c_char;
}

/// Whether the NUL-terminated `entry` starts with `prefix`, reading no further than needed (most
/// entries, e.g. a long PATH, are rejected at their first bytes, without a strlen).
fn has_prefix(entry: *const c_char, prefix: &[u8]) -> bool {
    prefix.iter().enumerate().all(|(i, &b)| {
        // SAFETY: bytes 0..i matched non-NUL prefix bytes, so the string extends at least to i.
        (unsafe { *entry.add(i) }) as u8 == b
    })
}

impl EnvSnapshot {
    /// Reads the variables of `ENV_NAMES` now (xdist sets them after the process started).
    pub fn take() -> EnvSnapshot {
        let mut vals: [Option<String>; 6] = Default::default();
        // SAFETY: `environ` is the process's NULL-terminated array of NUL-terminated
        // `NAME=value` strings, read here exactly as libc's own getenv reads it (with the same
        // exposure to a concurrent setenv in another thread).
        let mut p = unsafe { environ };
        while !p.is_null() {
            // SAFETY: `p` walks the array until its NULL entry.
            let entry = unsafe { *p };
            if entry.is_null() {
                break;
            }
            if has_prefix(entry, b"DAGZ_") || has_prefix(entry, b"PYTEST_XDIST_") {
                // SAFETY: each entry is a NUL-terminated string.
                let bytes = unsafe { CStr::from_ptr(entry) }.to_bytes();
                if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
                    let (k, v) = (&bytes[..eq], &bytes[eq + 1..]);
                    if let Some(i) = ENV_NAMES.iter().position(|n| n.as_bytes() == k) {
                        vals[i] = Some(String::from_utf8_lossy(v).into_owned());
                    }
                }
            }
            // SAFETY: still inside the array (the NULL entry was not reached).
            p = unsafe { p.add(1) };
        }
        EnvSnapshot(vals)
    }

    pub fn get(&self, name: &str) -> Option<String> {
        let i = ENV_NAMES.iter().position(|n| *n == name)?;
        self.0[i].clone()
    }
}

/// Policies by (`DAGZ_POLICY`, `DAGZ_DISABLE`): the file is parsed and the override applied once
/// per distinct pair; tests may change either at run time.
type PolicyKey = (Option<String>, Option<String>);
type PolicyCache = Option<(PolicyKey, Result<Arc<Policy>, String>)>;
static POLICY: Mutex<PolicyCache> = Mutex::new(None);

/// The policy for the environment `env`.
pub fn policy_in(env: &EnvSnapshot) -> Result<Arc<Policy>, String> {
    let key = (
        env.get("DAGZ_POLICY").filter(|p| !p.is_empty()),
        env.get("DAGZ_DISABLE"),
    );
    let mut cache = POLICY.lock();
    if let Some((k, r)) = cache.as_ref() {
        if *k == key {
            return r.clone();
        }
    }
    let base = match &key.0 {
        None => Ok(Policy::default()),
        Some(p) => match std::fs::read_to_string(p) {
            Ok(text) => Policy::from_toml(&text, p),
            Err(e) => Err(format!("policy file {p}: {e}")),
        },
    };
    let r = base.and_then(|b| b.with_env(&|n| env.get(n))).map(Arc::new);
    *cache = Some((key, r.clone()));
    r
}

pub fn policy() -> Result<Arc<Policy>, String> {
    policy_in(&EnvSnapshot::take())
}

pub fn worker_in(env: &EnvSnapshot) -> Result<Worker, String> {
    crate::policy::worker_from_env(&|n| env.get(n))
}

pub fn worker() -> Result<Worker, String> {
    worker_in(&EnvSnapshot::take())
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
    let env = EnvSnapshot::take();
    let policy = policy_in(&env).map_err(|e| strip_dagz(&e).to_owned())?;
    if !policy.enabled(engine) {
        dlog!(
            Level::Debug,
            "{}: {name} kept (engine disabled) via {via}",
            engine.label()
        );
        return Ok(None);
    }
    let worker = worker_in(&env)?;
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
