//! The decision for one connect as a value: keep (with the reason), reroute (to a name) or refuse
//! (with the error). Pure: the environment (the `DAGZ_*` / `PYTEST_XDIST_*` variables), the
//! thread's state, the policy and the decision callback are arguments, so every branch is unit
//! tested without a process. The edge (`crate::decide`) gathers those inputs and logs the outcome.
//!
//! Order: thread bypass, inside the callback, the policy (an error refuses), engine disabled, the
//! worker (an error refuses), the callback (keep / reroute / default / error), the per-database
//! override `DAGZ_RENAME` ([`super::rename`]: its fresh names kept, its bases renamed once the
//! policy reroutes them), the declarative policy. [`decide_early`] is the part that needs no
//! name, so a hook can pass a connect through before parsing anything.

use super::abi::{CB_DEFAULT, CB_ERROR, CB_KEEP, CB_REROUTE};
use super::message;
use super::policy::{self, Decision, Engine, Policy, Worker};
use super::rename::{self, Applied};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// The variables the decision reads.
pub const ENV_NAMES: [&str; 7] = [
    "DAGZ_POLICY",
    "DAGZ_DISABLE",
    "DAGZ_RENAME",
    "DAGZ_WORKER",
    "DAGZ_WORKER_COUNT",
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
];

/// The values of [`ENV_NAMES`] at one moment (xdist sets them after the process started, so
/// they are read at every connect), borrowed from where they were read (no allocation unless a
/// value is not UTF-8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DagzEnv<'e>([Option<Cow<'e, str>>; 7]);

impl<'e> DagzEnv<'e> {
    /// An environment with these `(name, value)` pairs; other names are ignored.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (&'e str, &'e str)>) -> DagzEnv<'e> {
        let mut env = DagzEnv::default();
        for (k, v) in pairs {
            env.set(k.as_bytes(), v.as_bytes());
        }
        env
    }

    /// Records `key=value` if `key` is one of [`ENV_NAMES`].
    pub fn set(&mut self, key: &[u8], value: &'e [u8]) {
        if let Some(i) = ENV_NAMES.iter().position(|n| n.as_bytes() == key) {
            self.0[i] = Some(String::from_utf8_lossy(value));
        }
    }

    /// The value of `name` (one of [`ENV_NAMES`]).
    pub fn get(&self, name: &str) -> Option<&str> {
        let i = ENV_NAMES.iter().position(|n| *n == name)?;
        self.0[i].as_deref()
    }

    /// `get` as the owned-value closure the policy functions take.
    pub fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(str::to_owned)
    }

    /// The worker these variables name.
    pub fn worker(&self) -> Result<Worker, String> {
        policy::worker_from(|n| self.get(n))
    }

    /// What the policy depends on: (`DAGZ_POLICY` when not empty, `DAGZ_DISABLE`).
    pub fn policy_key(&self) -> (Option<&str>, Option<&str>) {
        (
            self.get("DAGZ_POLICY").filter(|p| !p.is_empty()),
            self.get("DAGZ_DISABLE"),
        )
    }

    /// The policy for these variables: the file `DAGZ_POLICY` (read through `read`) or the
    /// defaults, then `DAGZ_DISABLE` applied.
    pub fn policy(&self, read: &dyn Fn(&str) -> std::io::Result<String>) -> Result<Policy, String> {
        let base = match self.policy_key().0 {
            None => Ok(Policy::default()),
            Some(p) => match read(p) {
                Ok(text) => Policy::from_toml(&text, p),
                Err(e) => Err(format!("policy file {p}: {e}")),
            },
        };
        base.and_then(|b| b.with_env(&|n| self.var(n)))
    }
}

/// The calling thread's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadState {
    /// Inside `dagz_bypass_enter` … `exit`.
    pub bypass: bool,
    /// Inside the decision callback (a connect the callback itself makes).
    pub in_callback: bool,
}

/// The decision callback's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CbAnswer {
    Keep,
    Reroute(String),
    /// No opinion: apply the declarative policy.
    Default,
}

/// The callback's return code and the text it wrote, read as an answer (`Err`: refuse).
pub fn cb_answer(rc: i32, text: &str) -> Result<CbAnswer, String> {
    match rc {
        CB_KEEP => Ok(CbAnswer::Keep),
        CB_REROUTE if text.is_empty() => Err("decision callback returned an empty name".into()),
        CB_REROUTE => Ok(CbAnswer::Reroute(text.to_owned())),
        CB_DEFAULT => Ok(CbAnswer::Default),
        CB_ERROR if text.is_empty() => Err("decision callback failed".into()),
        CB_ERROR => Err(message::bare(text).to_owned()),
        other => Err(format!("decision callback returned unknown code {other}")),
    }
}

/// The decision callback as the decision sees it.
pub type Callback<'a> = &'a mut dyn FnMut(Engine, &str) -> Result<CbAnswer, String>;

/// Why a name is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeepReason {
    Bypass,
    InCallback,
    EngineDisabled,
    Callback,
    Policy(policy::Keep),
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::Bypass => f.write_str("thread bypass"),
            KeepReason::InCallback => f.write_str("connect from inside the decision callback"),
            KeepReason::EngineDisabled => f.write_str("engine disabled"),
            KeepReason::Callback => f.write_str("callback"),
            KeepReason::Policy(k) => write!(f, "{k:?}"),
        }
    }
}

/// The outcome for one effective database name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Keep {
        reason: KeepReason,
    },
    /// `callback`: the name came from the decision callback (else from the policy's template).
    Reroute {
        name: String,
        worker: u32,
        callback: bool,
    },
    /// Refuse the connect; the message has no `dagz:` prefix.
    Refuse {
        error: String,
    },
}

impl Outcome {
    fn keep(reason: KeepReason) -> Outcome {
        Outcome::Keep { reason }
    }

    fn refuse(error: &str) -> Outcome {
        Outcome::Refuse {
            error: message::bare(error).to_owned(),
        }
    }

    /// As the rewriters take it: `Ok(None)` keeps `name`, `Ok(Some(new))` reroutes, `Err` refuses.
    pub fn into_result(self, name: &str) -> Result<Option<String>, String> {
        match self {
            Outcome::Keep { .. } => Ok(None),
            Outcome::Reroute { name: new, .. } => Ok((new != name).then_some(new)),
            Outcome::Refuse { error } => Err(error),
        }
    }
}

/// What can be decided before the name is known: `None` means "parse, then [`decide`]". Only
/// keeps are decided early; an error (a broken policy) is left to [`decide`], so a connect is
/// refused with the same message whether or not its connection string parses.
/// `policy`: `None` when not read yet (then only the thread's state can decide).
pub fn decide_early(
    engine: Engine,
    thread: ThreadState,
    policy: Option<&Result<Arc<Policy>, String>>,
) -> Option<Outcome> {
    if thread.bypass {
        return Some(Outcome::keep(KeepReason::Bypass));
    }
    if thread.in_callback {
        return Some(Outcome::keep(KeepReason::InCallback));
    }
    match policy {
        Some(Ok(p)) if !p.enabled(engine) => Some(Outcome::keep(KeepReason::EngineDisabled)),
        _ => None,
    }
}

/// The whole decision for the effective database `name` of one connect.
pub fn decide(
    engine: Engine,
    name: &str,
    thread: ThreadState,
    env: &DagzEnv<'_>,
    policy: &Result<Arc<Policy>, String>,
    callback: Option<Callback<'_>>,
) -> Outcome {
    if let Some(early) = decide_early(engine, thread, Some(policy)) {
        return early;
    }
    let policy = match policy {
        Ok(p) => p,
        Err(e) => return Outcome::refuse(e),
    };
    let worker = match env.worker() {
        Ok(w) => w,
        Err(e) => return Outcome::refuse(&e),
    };
    if let Some(cb) = callback {
        match cb(engine, name) {
            Err(e) => return Outcome::refuse(&e),
            Ok(CbAnswer::Keep) => return Outcome::keep(KeepReason::Callback),
            Ok(CbAnswer::Reroute(new)) => return from_callback(engine, new, worker),
            Ok(CbAnswer::Default) => {}
        }
    }
    let renamed = match env.get(rename::ENV).map(|v| rename::apply(v, engine, name)) {
        Some(Err(e)) => return Outcome::refuse(&e),
        Some(Ok(Some(Applied::Fresh))) => {
            return Outcome::keep(KeepReason::Policy(policy::Keep::AlreadyRerouted))
        }
        Some(Ok(Some(Applied::Rename(fresh)))) => Some(fresh),
        _ => None,
    };
    match policy.decide(engine, name, &worker) {
        Err(e) => Outcome::refuse(&e),
        Ok(Decision::Keep(why)) => Outcome::keep(KeepReason::Policy(why)),
        Ok(Decision::Reroute(new)) => Outcome::Reroute {
            // A worker database that could not be rebuilt: this run's fresh copy (`DAGZ_RENAME`).
            name: renamed.map_or(new, str::to_owned),
            worker: worker.num,
            callback: false,
        },
    }
}

fn from_callback(engine: Engine, new: String, worker: Worker) -> Outcome {
    if engine.name_len(&new) > engine.max_name_len() {
        return Outcome::Refuse {
            error: format!(
                "rerouted name {new:?} is {} {unit}, over the {}-{one} limit of {}",
                engine.name_len(&new),
                engine.max_name_len(),
                engine.label(),
                unit = engine.len_unit(),
                one = engine.len_unit().trim_end_matches('s'),
            ),
        };
    }
    Outcome::Reroute {
        name: new,
        worker: worker.num,
        callback: true,
    }
}

#[cfg(test)]
mod tests;
