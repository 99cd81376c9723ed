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
        })
    }

    /// The decision for the effective name `name`, logged. `Ok(None)`: keep; `Err`: refuse (the
    /// message without `dagz:`).
    pub fn decide(&mut self, name: &str) -> Result<Option<String>, String> {
        let mut cb = callback().map(|f| move |e: Engine, n: &str| call_back(f, e, n));
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
    // SAFETY: the decider is dropped before this returns.
    match unsafe { Decider::start(engine, via) } {
        None => Ok(None),
        Some(mut d) => d.decide(name),
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

fn call_back(cb: DecisionCallback, engine: Engine, name: &str) -> Result<CbAnswer, String> {
    let cname = CString::new(name).map_err(|_| "database name contains a NUL byte".to_owned())?;
    let mut buf = vec![0u8; CB_BUF];
    let rc = {
        let _g = guard::enter_callback();
        // SAFETY: `cb` was registered through dagz_set_decision_callback with this signature;
        // `cname` is NUL-terminated and `buf` is writable for CB_BUF bytes. No lock is held here.
        unsafe {
            cb(
                abi::engine_code(engine),
                cname.as_ptr(),
                buf.as_mut_ptr().cast(),
                CB_BUF - 1,
            )
        }
    };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(CB_BUF - 1);
    decision::cb_answer(rc, &String::from_utf8_lossy(&buf[..end]))
}
