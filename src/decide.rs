//! The edge of the decision: gathers the inputs of the pure [`crate::core::decision`] (the
//! environment, read in one pass over `environ`; the policy, cached; the thread's bypass and
//! callback state; the registered decision callback), runs it, and logs its outcome — the one
//! place where a decision is logged.

use crate::core::abi;
use crate::core::decision::{self, CbAnswer, DagzEnv, Outcome, ThreadState};
use crate::core::policy::{Engine, Policy, Worker};
use crate::dlog;
use crate::guard;
use crate::log::Level;
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

/// `int cb(int engine, const char *name, const char *params, size_t params_len, char *out,
/// size_t out_len)`: as [`DecisionCallback`], plus the connection's settings (`key\0value\0`…).
pub type DecisionCallback2 = unsafe extern "C" fn(
    engine: c_int,
    name: *const c_char,
    params: *const c_char,
    params_len: usize,
    out: *mut c_char,
    out_len: usize,
) -> c_int;

const CB_BUF: usize = 4096;

/// The registered callback: 0 (none), or a function pointer of the kind [`CALLBACK_KIND`] says.
static CALLBACK: AtomicUsize = AtomicUsize::new(0);
/// 1: a [`DecisionCallback`]; 2: a [`DecisionCallback2`]. Written before [`CALLBACK`].
static CALLBACK_KIND: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Copy)]
enum Registered {
    One(DecisionCallback),
    Two(DecisionCallback2),
}

/// Registers a callback of the first kind (replacing any callback).
pub fn set_callback(cb: Option<DecisionCallback>) {
    CALLBACK.store(0, Ordering::SeqCst);
    CALLBACK_KIND.store(1, Ordering::SeqCst);
    CALLBACK.store(cb.map_or(0, |f| f as usize), Ordering::SeqCst);
}

/// Registers a callback that also receives the connection's settings (replacing any callback).
pub fn set_callback2(cb: Option<DecisionCallback2>) {
    CALLBACK.store(0, Ordering::SeqCst);
    CALLBACK_KIND.store(2, Ordering::SeqCst);
    CALLBACK.store(cb.map_or(0, |f| f as usize), Ordering::SeqCst);
}

fn callback() -> Option<Registered> {
    let p = CALLBACK.load(Ordering::SeqCst);
    if p == 0 {
        return None;
    }
    // SAFETY: a non-zero CALLBACK was stored after CALLBACK_KIND named its type (SeqCst), and
    // the only values stored are function pointers of that type.
    Some(unsafe {
        if CALLBACK_KIND.load(Ordering::SeqCst) == 2 {
            Registered::Two(std::mem::transmute::<usize, DecisionCallback2>(p))
        } else {
            Registered::One(std::mem::transmute::<usize, DecisionCallback>(p))
        }
    })
}

/// Whether the registered callback wants the connection's settings (a hook computes them only
/// then).
pub fn wants_settings() -> bool {
    matches!(callback(), Some(Registered::Two(_)))
}

extern "C" {
    static environ: *const *const c_char;
}

/// Whether the NUL-terminated `entry` starts with `prefix`, reading no further than needed (most
/// entries, e.g. a long PATH, are rejected at their first bytes, without a strlen).
///
/// # Safety
/// `entry` points to a NUL-terminated string.
unsafe fn has_prefix(entry: *const c_char, prefix: &[u8]) -> bool {
    let mut i = 0;
    while i < prefix.len() {
        // SAFETY: bytes 0..i matched non-NUL prefix bytes, so the string extends at least to i.
        if (unsafe { *entry.add(i) }) as u8 != prefix[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The variables of [`decision::ENV_NAMES`] now, in one pass over `environ` (a `getenv` per
/// variable cost more than the rest of the decision), borrowed from the environment's strings.
///
/// # Safety
/// The result is used only while no other thread changes the environment: the exposure libc's
/// `getenv` result has (callers drop it before their hook or export returns).
pub unsafe fn env_snapshot<'e>() -> DagzEnv<'e> {
    let mut env = DagzEnv::default();
    // SAFETY: `environ` is the process's NULL-terminated array of NUL-terminated `NAME=value`
    // strings, read here exactly as libc's own getenv reads it (with the same exposure to a
    // concurrent setenv in another thread).
    let mut p = unsafe { environ };
    while !p.is_null() {
        // SAFETY: `p` walks the array until its NULL entry.
        let entry = unsafe { *p };
        if entry.is_null() {
            break;
        }
        // SAFETY: each entry is a NUL-terminated string (so its first byte is readable).
        let first = unsafe { *entry } as u8;
        // Most entries are rejected by their first byte alone.
        let wanted = match first {
            // SAFETY: as above.
            b'D' => unsafe { has_prefix(entry, b"DAGZ_") },
            // SAFETY: as above.
            b'P' => unsafe { has_prefix(entry, b"PYTEST_XDIST_") },
            _ => false,
        };
        if wanted {
            // SAFETY: as above; the string outlives `'e` by the function's contract.
            let bytes: &'e [u8] = unsafe { CStr::from_ptr(entry) }.to_bytes();
            if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
                env.set(&bytes[..eq], &bytes[eq + 1..]);
            }
        }
        // SAFETY: still inside the array (the NULL entry was not reached).
        p = unsafe { p.add(1) };
    }
    env
}

/// Policies by (`DAGZ_POLICY`, `DAGZ_DISABLE`): the file is parsed and the override applied once
/// per distinct pair; tests may change either at run time.
type PolicyKey = (Option<String>, Option<String>);
type PolicyCache = Option<(PolicyKey, Result<Arc<Policy>, String>)>;
static POLICY: Mutex<PolicyCache> = Mutex::new(None);

/// The policy for the environment `env`.
pub fn policy_in(env: &DagzEnv<'_>) -> Result<Arc<Policy>, String> {
    let key = env.policy_key();
    let mut cache = POLICY.lock();
    if let Some(((p, d), r)) = cache.as_ref() {
        if (p.as_deref(), d.as_deref()) == key {
            return r.clone();
        }
    }
    let r = env.policy(&|p| std::fs::read_to_string(p)).map(Arc::new);
    let owned = (key.0.map(str::to_owned), key.1.map(str::to_owned));
    *cache = Some((owned, r.clone()));
    r
}

pub fn policy() -> Result<Arc<Policy>, String> {
    // SAFETY: the snapshot is dropped before this returns.
    policy_in(&unsafe { env_snapshot() })
}

pub fn worker() -> Result<Worker, String> {
    // SAFETY: the snapshot is dropped before this returns.
    unsafe { env_snapshot() }.worker()
}

fn thread_state() -> ThreadState {
    guard::with(|g| ThreadState {
        bypass: g.bypass_depth() > 0,
        in_callback: g.in_callback(),
    })
}

/// The inputs of one connect's decision, gathered once for it.
pub struct Decider<'e> {
    engine: Engine,
    via: &'static str,
    thread: ThreadState,
    env: DagzEnv<'e>,
    policy: Result<Arc<Policy>, String>,
    /// The connection's settings for a callback that wants them (`key\0value\0`…).
    settings: Vec<u8>,
}

impl<'e> Decider<'e> {
    /// Gathers the inputs; `None` when the connect is already decided without its name (a keep:
    /// bypass, inside the callback, engine disabled), which is then logged.
    ///
    /// # Safety
    /// As [`env_snapshot`]: the decider is dropped before the hook or export returns.
    pub unsafe fn start(engine: Engine, via: &'static str) -> Option<Decider<'e>> {
        let thread = thread_state();
        if let Some(o) = decision::decide_early(engine, thread, None) {
            log_early(engine, via, &o);
            return None;
        }
        // SAFETY: the function's contract.
        let env = unsafe { env_snapshot() };
        let policy = policy_in(&env);
        if let Some(o) = decision::decide_early(engine, thread, Some(&policy)) {
            log_early(engine, via, &o);
            return None;
        }
        Some(Decider {
            engine,
            via,
            thread,
            env,
            policy,
            settings: Vec::new(),
        })
    }

    /// Gives the callback the connection's settings, computed by `f` only when the registered
    /// callback wants them. A connection string that does not parse gives none here (the
    /// rewrite reports it).
    pub fn with_settings<E>(&mut self, f: impl FnOnce() -> Result<Vec<u8>, E>) {
        if wants_settings() {
            self.settings = f().unwrap_or_default();
        }
    }

    /// The decision for the effective name `name`, logged. `Ok(None)`: keep; `Err`: refuse (the
    /// message without `dagz:`).
    pub fn decide(&mut self, name: &str) -> Result<Option<String>, String> {
        let settings = &self.settings;
        let mut cb = callback().map(|f| move |e: Engine, n: &str| call_back(f, e, n, settings));
        let out = decision::decide(
            self.engine,
            name,
            self.thread,
            &self.env,
            &self.policy,
            cb.as_mut().map(|f| f as decision::Callback<'_>),
        );
        log_outcome(self.engine, name, self.via, &out);
        out.into_result(name)
    }
}

/// The whole decision for `name` of one connect through `via` (inputs gathered now).
pub fn decide(engine: Engine, name: &str, via: &'static str) -> Result<Option<String>, String> {
    decide_with(engine, name, via, Vec::new)
}

/// [`decide`], the callback given the connection's settings that `settings` computes (only when
/// the callback wants them).
pub fn decide_with(
    engine: Engine,
    name: &str,
    via: &'static str,
    settings: impl FnOnce() -> Vec<u8>,
) -> Result<Option<String>, String> {
    // SAFETY: the decider is dropped before this returns.
    match unsafe { Decider::start(engine, via) } {
        None => Ok(None),
        Some(mut d) => {
            d.with_settings(|| Ok::<_, ()>(settings()));
            d.decide(name)
        }
    }
}

fn log_early(engine: Engine, via: &str, out: &Outcome) {
    if let Outcome::Keep { reason } = out {
        dlog!(
            Level::Debug,
            "{}: kept ({reason}) via {via}, before reading the name",
            engine.label()
        );
    }
}

/// The one place a decision is logged.
fn log_outcome(engine: Engine, name: &str, via: &str, out: &Outcome) {
    let label = engine.label();
    match out {
        Outcome::Keep { reason } => {
            dlog!(Level::Debug, "{label}: {name} kept ({reason}) via {via}")
        }
        Outcome::Reroute {
            name: new,
            worker,
            callback,
        } => {
            let by = if *callback { ", callback" } else { "" };
            dlog!(
                Level::Info,
                "{label}: {name} -> {new} (worker {worker}{by}) via {via}"
            )
        }
        Outcome::Refuse { error } => {
            dlog!(Level::Debug, "{label}: {name} refused via {via}: {error}")
        }
    }
}

fn call_back(
    cb: Registered,
    engine: Engine,
    name: &str,
    settings: &[u8],
) -> Result<CbAnswer, String> {
    let cname = CString::new(name).map_err(|_| "database name contains a NUL byte".to_owned())?;
    let mut buf = vec![0u8; CB_BUF];
    let code = abi::engine_code(engine);
    let out = buf.as_mut_ptr().cast();
    let rc = {
        let _g = guard::enter_callback();
        match cb {
            // SAFETY: `f` was registered through dagz_set_decision_callback with this
            // signature; `cname` is NUL-terminated and `buf` is writable for CB_BUF bytes. No
            // lock is held here.
            Registered::One(f) => unsafe { f(code, cname.as_ptr(), out, CB_BUF - 1) },
            // SAFETY: as above (dagz_set_decision_callback2); `settings` is readable for its
            // length and outlives the call.
            Registered::Two(f) => unsafe {
                f(
                    code,
                    cname.as_ptr(),
                    settings.as_ptr().cast(),
                    settings.len(),
                    out,
                    CB_BUF - 1,
                )
            },
        }
    };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(CB_BUF - 1);
    decision::cb_answer(rc, &String::from_utf8_lossy(&buf[..end]))
}
