//! The rerouting policy: worker numbers, name templates, system databases, allow/deny lists and
//! the TOML policy file (`DAGZ_POLICY`). Pure and safe: the environment is injected as a closure,
//! the policy file as text.
//!
//! # Policy file schema
//!
//! ```toml
//! disable = false                      # optional: true turns every engine off
//!
//! [postgres]                           # optional; exactly "postgres" and "mysql"
//! enabled = true                       # optional
//! template = "{db}_jw{worker:02}"      # optional; see below
//! reroute = ["myapp", "myapp_*"]       # optional allow-list (shell globs, * and ?);
//!                                      #   absent = every non-system name
//! skip = ["legacy_shared"]             # optional deny-list (globs)
//!
//! [mysql]
//! # same keys
//! ```
//!
//! Template placeholders: `{db}` (required, exactly once), `{worker}` or `{worker:0N}` (zero-padded
//! to at least N digits, never truncated; one of them required: without it every worker would
//! share one database), `{worker_count}`. Anything else in braces, a stray `}`,
//! quotes, backslashes and control characters are errors.
//!
//! Decision order for one name (see [`Policy::decide`]): empty, engine disabled, system database,
//! already per-worker (`…_jwNN`, the template's shape, or `…_gwN` as pytest-django names its
//! per-worker test databases), skip list, allow-list, then the template — whose result must fit the engine's
//! identifier limit (never truncated).

use std::fmt;

mod template;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gw;
mod toml;

use template::*;

/// A database engine family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    Postgres,
    Mysql,
}

impl Engine {
    /// The engine's identifier limit: PostgreSQL `NAMEDATALEN - 1` = 63 bytes, MySQL/MariaDB 64
    /// characters (see [`Engine::name_len`]).
    pub fn max_name_len(self) -> usize {
        match self {
            Engine::Postgres => 63,
            Engine::Mysql => 64,
        }
    }

    /// The length of `name` as the engine's limit counts it: bytes for PostgreSQL, characters
    /// for MySQL/MariaDB (a 35-character, 65-byte name is a valid MariaDB database name).
    pub fn name_len(self, name: &str) -> usize {
        match self {
            Engine::Postgres => name.len(),
            Engine::Mysql => name.chars().count(),
        }
    }

    /// The unit of [`Engine::max_name_len`], for messages.
    pub fn len_unit(self) -> &'static str {
        match self {
            Engine::Postgres => "bytes",
            Engine::Mysql => "characters",
        }
    }

    /// Short label for logs: `pg` / `mysql`.
    pub fn label(self) -> &'static str {
        match self {
            Engine::Postgres => "pg",
            Engine::Mysql => "mysql",
        }
    }

    /// Databases the default policy never reroutes.
    pub fn system_databases(self) -> &'static [&'static str] {
        match self {
            Engine::Postgres => &["postgres", "template0", "template1"],
            Engine::Mysql => &["mysql", "information_schema", "performance_schema", "sys"],
        }
    }

    fn table_name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }

    fn is_system(self, name: &str) -> bool {
        match self {
            // libpq passes the name to the server verbatim: PostgreSQL compares exactly.
            Engine::Postgres => self.system_databases().contains(&name),
            // MySQL resolves these schemas case-insensitively whatever lower_case_table_names says.
            Engine::Mysql => self
                .system_databases()
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name)),
        }
    }
}

/// This process's pytest-xdist worker: its number and the number of workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Worker {
    pub num: u32,
    pub count: u32,
}

fn parse_decimal(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The worker of this process: `DAGZ_WORKER` if set (decimal), else `PYTEST_XDIST_WORKER`
/// (`gw3` → 3), else 0; count: `DAGZ_WORKER_COUNT`, else `PYTEST_XDIST_WORKER_COUNT`, else 1.
/// Empty variables count as unset; a set but unparsable value is an error naming it.
pub fn worker_from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Worker, String> {
    let names = [
        "DAGZ_WORKER",
        "PYTEST_XDIST_WORKER",
        "DAGZ_WORKER_COUNT",
        "PYTEST_XDIST_WORKER_COUNT",
    ];
    let vals = names.map(var);
    worker_from(|n| {
        let i = names.iter().position(|m| *m == n)?;
        vals[i].as_deref()
    })
}

/// [`worker_from_env`] over borrowed values (no allocation unless an error is reported).
pub fn worker_from<'e>(var: impl Fn(&str) -> Option<&'e str>) -> Result<Worker, String> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    let num = if let Some(v) = set("DAGZ_WORKER") {
        parse_decimal(v).ok_or_else(|| format!("DAGZ_WORKER={v:?} is not a worker number"))?
    } else if let Some(v) = set("PYTEST_XDIST_WORKER") {
        v.strip_prefix("gw")
            .and_then(parse_decimal)
            .ok_or_else(|| {
                format!("PYTEST_XDIST_WORKER={v:?} is not a pytest-xdist worker id (gwN)")
            })?
    } else {
        0
    };
    let count = match ["DAGZ_WORKER_COUNT", "PYTEST_XDIST_WORKER_COUNT"]
        .iter()
        .find_map(|n| set(n).map(|v| (*n, v)))
    {
        Some((n, v)) => parse_decimal(v)
            .filter(|c| *c > 0)
            .ok_or_else(|| format!("{n}={v:?} is not a worker count"))?,
        None => 1,
    };
    Ok(Worker { num, count })
}

/// Why a name is left alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// No name (or an empty one).
    Empty,
    /// The engine (or everything) is disabled by the policy file or `DAGZ_DISABLE`.
    EngineDisabled,
    /// A system database (`postgres`, `mysql`, `information_schema`, …).
    System,
    /// Matched the `skip` list.
    Skipped,
    /// An allow-list (`reroute`) exists and the name is not on it.
    NotListed,
    /// Already a per-worker name (`…_jwNN`, the template's shape for this worker, or a name
    /// pytest-django / xdist suites make per worker: `…_gwN`).
    AlreadyRerouted,
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Keep::Empty => "empty name",
            Keep::EngineDisabled => "engine disabled",
            Keep::System => "system database",
            Keep::Skipped => "in the skip list",
            Keep::NotListed => "not in the reroute list",
            Keep::AlreadyRerouted => "already rerouted",
        })
    }
}

/// The outcome for one database name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Keep(Keep),
    Reroute(String),
}

#[derive(Clone, Debug)]
struct EnginePolicy {
    enabled: bool,
    template: Template,
    reroute: Option<Vec<Glob>>,
    skip: Vec<Glob>,
}

impl Default for EnginePolicy {
    fn default() -> Self {
        EnginePolicy {
            enabled: true,
            template: Template::default_template(),
            reroute: None,
            skip: Vec::new(),
        }
    }
}

/// The whole rerouting policy: the policy file (or the defaults) plus env overrides.
#[derive(Clone, Debug)]
pub struct Policy {
    disable_all: bool,
    pg: EnginePolicy,
    mysql: EnginePolicy,
}

impl Default for Policy {
    /// Every non-system name rerouted with `{db}_jw{worker:02}`, both engines on.
    fn default() -> Self {
        Policy {
            disable_all: false,
            pg: EnginePolicy::default(),
            mysql: EnginePolicy::default(),
        }
    }
}

impl Policy {
    /// Apply `DAGZ_DISABLE`: `1`/`true`/`all` turns everything off; `pg`, `mysql` or `pg,mysql`
    /// turn those engines off; `0`/`false`/empty/unset change nothing. Anything else is an error.
    pub fn with_env(mut self, var: &dyn Fn(&str) -> Option<String>) -> Result<Policy, String> {
        let Some(raw) = var("DAGZ_DISABLE") else {
            return Ok(self);
        };
        let v = raw.trim().to_ascii_lowercase();
        match v.as_str() {
            "" | "0" | "false" | "no" | "off" => return Ok(self),
            "1" | "true" | "all" | "yes" | "on" => {
                self.disable_all = true;
                return Ok(self);
            }
            _ => {}
        }
        for item in v.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "pg" | "postgres" | "postgresql" => self.pg.enabled = false,
                "mysql" | "mariadb" => self.mysql.enabled = false,
                _ => {
                    return Err(format!(
                    "DAGZ_DISABLE={raw:?} is not 1, all, 0 or a comma-separated list of pg, mysql"
                ))
                }
            }
        }
        Ok(self)
    }

    fn engine(&self, e: Engine) -> &EnginePolicy {
        match e {
            Engine::Postgres => &self.pg,
            Engine::Mysql => &self.mysql,
        }
    }

    /// Whether names of this engine are rerouted at all.
    pub fn enabled(&self, e: Engine) -> bool {
        !self.disable_all && self.engine(e).enabled
    }

    /// What the engine's template adds after `{db}` for this worker (`"_jw03"` for the default
    /// template). For a template with text before `{db}` that text is not included.
    pub fn suffix(&self, e: Engine, w: &Worker) -> String {
        self.engine(e).template.parts(w).1
    }

    fn already_rerouted(&self, e: Engine, name: &str, w: &Worker) -> bool {
        if has_jw_suffix(name) || has_gw_suffix(name) {
            return true;
        }
        let (before, after) = self.engine(e).template.parts(w);
        name.len() > before.len() + after.len()
            && name.starts_with(&before)
            && name.ends_with(&after)
    }

    /// The whole decision for one effective database name (see the module docs for the order).
    /// A rendered name over the engine's limit is an error, never truncated.
    pub fn decide(&self, e: Engine, name: &str, w: &Worker) -> Result<Decision, String> {
        if name.is_empty() {
            return Ok(Decision::Keep(Keep::Empty));
        }
        if !self.enabled(e) {
            return Ok(Decision::Keep(Keep::EngineDisabled));
        }
        if e.is_system(name) {
            return Ok(Decision::Keep(Keep::System));
        }
        if self.already_rerouted(e, name, w) {
            return Ok(Decision::Keep(Keep::AlreadyRerouted));
        }
        let ep = self.engine(e);
        let chars: Vec<char> = if ep.skip.is_empty() && ep.reroute.is_none() {
            Vec::new()
        } else {
            name.chars().collect()
        };
        if ep.skip.iter().any(|g| g.matches(&chars)) {
            return Ok(Decision::Keep(Keep::Skipped));
        }
        if let Some(allow) = &ep.reroute {
            if !allow.iter().any(|g| g.matches(&chars)) {
                return Ok(Decision::Keep(Keep::NotListed));
            }
        }
        self.render(e, name, w).map(Decision::Reroute)
    }

    /// The engine's template applied to `name`, without any check but the length limit.
    pub fn render(&self, e: Engine, name: &str, w: &Worker) -> Result<String, String> {
        let out = self.engine(e).template.render(name, w);
        if e.name_len(&out) > e.max_name_len() {
            return Err(format!(
                "database name {out:?} is {} {unit}, over the {} limit of {} {unit}",
                e.name_len(&out),
                match e {
                    Engine::Postgres => "PostgreSQL",
                    Engine::Mysql => "MySQL",
                },
                e.max_name_len(),
                unit = e.len_unit(),
            ));
        }
        Ok(out)
    }
}

/// `…_jw` followed by at least two ASCII digits at the end.
fn has_jw_suffix(name: &str) -> bool {
    let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    digits >= 2 && name[..name.len() - digits].ends_with("_jw")
}

/// `…_gw` followed by at least one ASCII digit at the end, after at least one other character:
/// a name made per pytest-xdist worker already (pytest-django's `test_<NAME>_gw3`, a
/// `TEST["NAME"]` + `_gw3`, a suite's own `…_gw3`), on any worker: dagz never suffixes it again.
fn has_gw_suffix(name: &str) -> bool {
    let digits = name.bytes().rev().take_while(u8::is_ascii_digit).count();
    let head = &name[..name.len() - digits];
    digits >= 1 && head.len() > "_gw".len() && head.ends_with("_gw")
}
