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
//! Template placeholders: `{db}` (required, exactly once), `{worker}`, `{worker:0N}` (zero-padded
//! to at least N digits, never truncated), `{worker_count}`. Anything else in braces, a stray `}`,
//! quotes, backslashes and control characters are errors.
//!
//! Decision order for one name (see [`Policy::decide`]): empty, engine disabled, system database,
//! already rerouted, skip list, allow-list, then the template — whose result must fit the engine's
//! identifier limit (never truncated).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A database engine family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    Postgres,
    Mysql,
}

impl Engine {
    /// The engine's identifier limit in bytes (PostgreSQL `NAMEDATALEN - 1`, MySQL 64).
    pub fn max_name_len(self) -> usize {
        match self {
            Engine::Postgres => 63,
            Engine::Mysql => 64,
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

fn set_var(var: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    var(name).filter(|v| !v.is_empty())
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
    let num = if let Some(v) = set_var(var, "DAGZ_WORKER") {
        parse_decimal(&v).ok_or_else(|| format!("DAGZ_WORKER={v:?} is not a worker number"))?
    } else if let Some(v) = set_var(var, "PYTEST_XDIST_WORKER") {
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
        .find_map(|n| set_var(var, n).map(|v| (*n, v)))
    {
        Some((n, v)) => parse_decimal(&v)
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
    /// Already a per-worker name (`…_jwNN`, or the template's shape for this worker).
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

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Lit(String),
    Db,
    /// `{worker}` (width 0) or `{worker:0N}` (zero-padded to N).
    Worker(usize),
    WorkerCount,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Template {
    pieces: Vec<Piece>,
}

#[cfg(test)]
const DEFAULT_TEMPLATE: &str = "{db}_jw{worker:02}";
/// Widths beyond this cannot fit any engine's identifier limit anyway.
const MAX_WIDTH: usize = 64;

impl Template {
    fn default_template() -> Template {
        Template {
            pieces: vec![Piece::Db, Piece::Lit("_jw".to_owned()), Piece::Worker(2)],
        }
    }

    fn parse(s: &str) -> Result<Template, String> {
        if let Some(c) = s
            .chars()
            .find(|c| c.is_control() || matches!(c, '\'' | '"' | '`' | '\\'))
        {
            return Err(format!(
                "template must not contain quotes, backslashes or control characters (found {c:?})"
            ));
        }
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            match c {
                '{' => {
                    let Some(end) = rest.find('}') else {
                        return Err("template has a \"{\" without a closing \"}\"".to_owned());
                    };
                    let inner = &rest[..end];
                    rest = &rest[end + 1..];
                    let piece = match inner {
                        "db" => Piece::Db,
                        "worker" => Piece::Worker(0),
                        "worker_count" => Piece::WorkerCount,
                        _ => match inner.strip_prefix("worker:0").and_then(parse_decimal) {
                            Some(w) if (w as usize) <= MAX_WIDTH => Piece::Worker(w as usize),
                            _ => {
                                return Err(format!(
                                    "unknown placeholder {{{inner}}} in template (use {{db}}, {{worker}}, {{worker:0N}}, {{worker_count}})"
                                ))
                            }
                        },
                    };
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(piece);
                }
                '}' => return Err("template has a \"}\" without an opening \"{\"".to_owned()),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        match pieces.iter().filter(|p| **p == Piece::Db).count() {
            0 => Err("template must contain {db}".to_owned()),
            1 => Ok(Template { pieces }),
            _ => Err("template must contain {db} exactly once".to_owned()),
        }
    }

    fn render_piece(out: &mut String, p: &Piece, db: &str, w: &Worker) {
        match p {
            Piece::Lit(s) => out.push_str(s),
            Piece::Db => out.push_str(db),
            Piece::Worker(width) => push_padded(out, w.num, *width),
            Piece::WorkerCount => push_padded(out, w.count, 0),
        }
    }

    /// The rendered text before and after `{db}` for this worker.
    fn parts(&self, w: &Worker) -> (String, String) {
        let mut before = String::new();
        let mut after = String::new();
        let mut seen_db = false;
        for p in &self.pieces {
            if *p == Piece::Db {
                seen_db = true;
            } else if seen_db {
                Self::render_piece(&mut after, p, "", w);
            } else {
                Self::render_piece(&mut before, p, "", w);
            }
        }
        (before, after)
    }

    fn render(&self, db: &str, w: &Worker) -> String {
        let mut out = String::with_capacity(db.len() + 8);
        for p in &self.pieces {
            Self::render_piece(&mut out, p, db, w);
        }
        out
    }
}

/// `n` in decimal, zero-padded to `width`, without the formatting machinery (it ran at every
/// connect and cost more than the rest of the decision).
fn push_padded(out: &mut String, n: u32, width: usize) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for _ in (digits.len() - i)..width {
        out.push('0');
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// A shell-style glob with `*` (any run) and `?` (any one character).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Glob {
    pat: Vec<char>,
}

impl Glob {
    fn new(p: &str) -> Glob {
        Glob {
            pat: p.chars().collect(),
        }
    }

    fn matches(&self, name: &[char]) -> bool {
        let pat = &self.pat;
        let (mut p, mut n) = (0usize, 0usize);
        // Position of the last `*` seen and the name position it currently swallows up to.
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match pat.get(p) {
                Some('*') => {
                    star = Some((p, n));
                    p += 1;
                }
                Some(c) if *c == '?' || Some(c) == name.get(n) => {
                    p += 1;
                    n += 1;
                }
                _ => match star {
                    Some((sp, sn)) => {
                        p = sp + 1;
                        n = sn + 1;
                        star = Some((sp, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        pat.get(p..)
            .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
    }
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

/// serde_spanned's protocol (what `toml::Spanned` asks the deserializer for). toml leaves the span
/// out for some keys (the last part of a dotted key), so keys are read with an optional span.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
static SPANNED_FIELDS: [&str; 3] = [SPANNED_START, SPANNED_END, SPANNED_VALUE];
const TOML_DATETIME: &str = "$__toml_private_datetime";

/// A table key and, when toml knows it, its byte span.
struct SKey {
    name: String,
    span: Option<std::ops::Range<usize>>,
}

impl<'de> Deserialize<'de> for SKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SKey, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SKey, E> {
                Ok(SKey {
                    name: v.to_owned(),
                    span: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SKey, A::Error> {
                let (mut start, mut end, mut name) = (None, None, None);
                while let Some(k) = m.next_key::<String>()? {
                    match k.as_str() {
                        SPANNED_START => start = Some(m.next_value::<usize>()?),
                        SPANNED_END => end = Some(m.next_value::<usize>()?),
                        SPANNED_VALUE => name = Some(m.next_value::<String>()?),
                        _ => {
                            m.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                let name = name.ok_or_else(|| de::Error::missing_field(SPANNED_VALUE))?;
                Ok(SKey {
                    name,
                    span: start.zip(end).map(|(s, e)| s..e),
                })
            }
        }
        d.deserialize_struct(SPANNED_NAME, &SPANNED_FIELDS, V)
    }
}

/// A TOML value whose table keys carry their spans, so that errors can name a line.
enum Node {
    Table(Vec<(SKey, Node)>),
    Array(Vec<Node>),
    Str(String),
    Bool(bool),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a TOML value")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
                Ok(Node::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Other("an integer"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Other("an integer"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Other("a float"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
                Ok(Node::Str(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = map.next_key::<SKey>()? {
                    if k.name == TOML_DATETIME {
                        // toml hands a datetime over as a one-entry map.
                        map.next_value::<de::IgnoredAny>()?;
                        return Ok(Node::Other("a datetime"));
                    }
                    let v = map.next_value::<Node>()?;
                    entries.push((k, v));
                }
                Ok(Node::Table(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl Node {
    fn type_name(&self) -> &'static str {
        match self {
            Node::Table(_) => "a table",
            Node::Array(_) => "an array",
            Node::Str(_) => "a string",
            Node::Bool(_) => "a boolean",
            Node::Other(t) => t,
        }
    }
}

/// Where a key is: its span, or (toml has none for the last part of a dotted key) its first
/// occurrence after the enclosing key.
fn key_pos(text: &str, key: &SKey, parent: usize) -> usize {
    match &key.span {
        Some(r) => r.start,
        None => text
            .get(parent..)
            .and_then(|t| t.find(key.name.as_str()))
            .map_or(parent, |i| parent + i),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
        + 1
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Policy {
    /// Parse the TOML policy file `text` (read from `path`, used in messages). Errors are one line
    /// naming the file, the line and the key.
    pub fn from_toml(text: &str, path: &str) -> Result<Policy, String> {
        let err = |at: usize, msg: String| {
            format!("dagz: policy {path} line {}: {msg}", line_of(text, at))
        };
        let root = toml::from_str::<Node>(text).map_err(|e| match e.span() {
            Some(span) => err(span.start, one_line(e.message())),
            None => format!("dagz: policy {path}: {}", one_line(e.message())),
        })?;
        let Node::Table(entries) = root else {
            return Err(format!("dagz: policy {path}: not a TOML table"));
        };
        let mut policy = Policy::default();
        for (key, value) in &entries {
            let at = key_pos(text, key, 0);
            let name = key.name.as_str();
            match name {
                "disable" => match value {
                    Node::Bool(b) => policy.disable_all = *b,
                    v => {
                        return Err(err(
                            at,
                            format!(
                                "key \"disable\" must be true or false, not {}",
                                v.type_name()
                            ),
                        ))
                    }
                },
                "postgres" | "mysql" => {
                    let Node::Table(items) = value else {
                        return Err(err(
                            at,
                            format!(
                                "key {name:?} must be a table ([{name}]), not {}",
                                value.type_name()
                            ),
                        ));
                    };
                    let engine = if name == "postgres" {
                        Engine::Postgres
                    } else {
                        Engine::Mysql
                    };
                    let ep = Self::engine_from_toml(engine, items, text, at)
                        .map_err(|(at, m)| err(at, m))?;
                    match engine {
                        Engine::Postgres => policy.pg = ep,
                        Engine::Mysql => policy.mysql = ep,
                    }
                }
                other => {
                    return Err(err(
                        at,
                        format!(
                            "unknown key {other:?} (expected \"disable\", [postgres] or [mysql])"
                        ),
                    ))
                }
            }
        }
        Ok(policy)
    }

    fn engine_from_toml(
        engine: Engine,
        items: &[(SKey, Node)],
        text: &str,
        parent: usize,
    ) -> Result<EnginePolicy, (usize, String)> {
        let table = engine.table_name();
        let mut ep = EnginePolicy::default();
        for (key, value) in items {
            let at = key_pos(text, key, parent);
            let name = key.name.as_str();
            match name {
                "enabled" => match value {
                    Node::Bool(b) => ep.enabled = *b,
                    v => {
                        return Err((
                            at,
                            format!("key \"enabled\" must be true or false, not {}", v.type_name()),
                        ))
                    }
                },
                "template" => match value {
                    Node::Str(s) => {
                        ep.template = Template::parse(s).map_err(|m| (at, format!("key \"template\": {m}")))?
                    }
                    v => return Err((at, format!("key \"template\" must be a string, not {}", v.type_name()))),
                },
                "reroute" | "skip" => {
                    let globs = match value {
                        Node::Array(xs) => xs
                            .iter()
                            .map(|x| match x {
                                Node::Str(s) => Some(Glob::new(s)),
                                _ => None,
                            })
                            .collect::<Option<Vec<_>>>(),
                        _ => None,
                    }
                    .ok_or_else(|| (at, format!("key {name:?} must be a list of strings")))?;
                    if name == "reroute" {
                        ep.reroute = Some(globs);
                    } else {
                        ep.skip = globs;
                    }
                }
                other => {
                    return Err((
                        at,
                        format!("unknown key {other:?} in [{table}] (expected enabled, template, reroute, skip)"),
                    ))
                }
            }
        }
        Ok(ep)
    }

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
        if has_jw_suffix(name) {
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
        let chars: Vec<char> = name.chars().collect();
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
        if out.len() > e.max_name_len() {
            return Err(format!(
                "database name {out:?} is {} bytes, over the {} limit of {} bytes",
                out.len(),
                match e {
                    Engine::Postgres => "PostgreSQL",
                    Engine::Mysql => "MySQL",
                },
                e.max_name_len()
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn w(num: u32) -> Worker {
        Worker { num, count: 4 }
    }

    fn reroute(p: &Policy, e: Engine, name: &str, num: u32) -> Decision {
        p.decide(e, name, &w(num)).unwrap()
    }

    #[test]
    fn default_template_spelled_out() {
        assert_eq!(
            Template::parse(DEFAULT_TEMPLATE).unwrap(),
            Template::default_template()
        );
    }

    #[test]
    fn engine_facts() {
        assert_eq!(Engine::Postgres.max_name_len(), 63);
        assert_eq!(Engine::Mysql.max_name_len(), 64);
        assert_eq!(Engine::Postgres.label(), "pg");
        assert_eq!(Engine::Mysql.label(), "mysql");
        assert_eq!(
            Engine::Postgres.system_databases(),
            &["postgres", "template0", "template1"]
        );
        assert_eq!(
            Engine::Mysql.system_databases(),
            &["mysql", "information_schema", "performance_schema", "sys"]
        );
    }

    #[test]
    fn worker_env() {
        assert_eq!(worker_from_env(&env(&[])), Ok(Worker { num: 0, count: 1 }));
        assert_eq!(
            worker_from_env(&env(&[
                ("PYTEST_XDIST_WORKER", "gw12"),
                ("PYTEST_XDIST_WORKER_COUNT", "16")
            ])),
            Ok(Worker { num: 12, count: 16 })
        );
        assert_eq!(
            worker_from_env(&env(&[
                ("DAGZ_WORKER", "5"),
                ("PYTEST_XDIST_WORKER", "gw1")
            ])),
            Ok(Worker { num: 5, count: 1 })
        );
        assert_eq!(
            worker_from_env(&env(&[("DAGZ_WORKER", ""), ("PYTEST_XDIST_WORKER", "gw3")])),
            Ok(Worker { num: 3, count: 1 })
        );
        assert_eq!(
            worker_from_env(&env(&[
                ("DAGZ_WORKER_COUNT", "3"),
                ("PYTEST_XDIST_WORKER_COUNT", "8")
            ])),
            Ok(Worker { num: 0, count: 3 })
        );
        assert_eq!(
            worker_from_env(&env(&[("DAGZ_WORKER", "abc")])),
            Err("DAGZ_WORKER=\"abc\" is not a worker number".to_owned())
        );
        for bad in ["gw", "3", "gwx", "gw-1", "master", "gw99999999999"] {
            let e = worker_from_env(&env(&[("PYTEST_XDIST_WORKER", bad)])).unwrap_err();
            assert!(e.contains("PYTEST_XDIST_WORKER") && e.contains(bad), "{e}");
        }
        for bad in ["-1", " 1", "1.0", "+2"] {
            assert!(
                worker_from_env(&env(&[("DAGZ_WORKER", bad)])).is_err(),
                "{bad}"
            );
        }
        let e = worker_from_env(&env(&[("PYTEST_XDIST_WORKER_COUNT", "0")])).unwrap_err();
        assert_eq!(e, "PYTEST_XDIST_WORKER_COUNT=\"0\" is not a worker count");
        assert!(worker_from_env(&env(&[("DAGZ_WORKER_COUNT", "x")])).is_err());
    }

    #[test]
    fn default_policy() {
        let p = Policy::default();
        assert!(p.enabled(Engine::Postgres) && p.enabled(Engine::Mysql));
        assert_eq!(
            reroute(&p, Engine::Postgres, "myapp", 3),
            Decision::Reroute("myapp_jw03".into())
        );
        assert_eq!(
            reroute(&p, Engine::Postgres, "myapp", 112),
            Decision::Reroute("myapp_jw112".into())
        );
        assert_eq!(
            reroute(&p, Engine::Mysql, "myapp", 0),
            Decision::Reroute("myapp_jw00".into())
        );
        assert_eq!(
            reroute(&p, Engine::Postgres, "", 3),
            Decision::Keep(Keep::Empty)
        );
        for s in ["postgres", "template0", "template1"] {
            assert_eq!(
                reroute(&p, Engine::Postgres, s, 3),
                Decision::Keep(Keep::System)
            );
        }
        // Only MySQL's system schemas are case-insensitive.
        assert_eq!(
            reroute(&p, Engine::Postgres, "Postgres", 3),
            Decision::Reroute("Postgres_jw03".into())
        );
        for s in [
            "mysql",
            "information_schema",
            "INFORMATION_SCHEMA",
            "performance_schema",
            "sys",
        ] {
            assert_eq!(
                reroute(&p, Engine::Mysql, s, 3),
                Decision::Keep(Keep::System)
            );
        }
        assert_eq!(
            reroute(&p, Engine::Mysql, "postgres", 1),
            Decision::Reroute("postgres_jw01".into())
        );
        assert_eq!(p.suffix(Engine::Postgres, &w(3)), "_jw03");
        assert_eq!(p.suffix(Engine::Mysql, &w(112)), "_jw112");
    }

    #[test]
    fn idempotent_and_already_rerouted() {
        let p = Policy::default();
        for name in ["myapp_jw03", "myapp_jw05", "myapp_jw112", "_jw00"] {
            assert_eq!(
                reroute(&p, Engine::Postgres, name, 3),
                Decision::Keep(Keep::AlreadyRerouted),
                "{name}"
            );
        }
        // One digit is not a `_jwNN` suffix.
        assert_eq!(
            reroute(&p, Engine::Postgres, "x_jw3", 3),
            Decision::Reroute("x_jw3_jw03".into())
        );
        assert_eq!(
            reroute(&p, Engine::Postgres, "x_jwab", 3),
            Decision::Reroute("x_jwab_jw03".into())
        );
        // A custom template's own shape counts for this worker.
        let p =
            Policy::from_toml("[postgres]\ntemplate = \"t_{db}_w{worker}\"\n", "p.toml").unwrap();
        assert_eq!(
            reroute(&p, Engine::Postgres, "app", 7),
            Decision::Reroute("t_app_w7".into())
        );
        assert_eq!(
            reroute(&p, Engine::Postgres, "t_app_w7", 7),
            Decision::Keep(Keep::AlreadyRerouted)
        );
        assert_eq!(
            reroute(&p, Engine::Postgres, "t_app_w7", 8),
            Decision::Reroute("t_t_app_w7_w8".into())
        );
        assert_eq!(p.suffix(Engine::Postgres, &w(7)), "_w7");
    }

    #[test]
    fn length_limits() {
        let p = Policy::default();
        let base58 = "a".repeat(58);
        // 58 + 5 = 63 fits PostgreSQL exactly.
        assert_eq!(
            reroute(&p, Engine::Postgres, &base58, 3),
            Decision::Reroute(format!("{base58}_jw03"))
        );
        let base59 = "a".repeat(59);
        let e = p.decide(Engine::Postgres, &base59, &w(3)).unwrap_err();
        assert!(
            e.contains("64 bytes") && e.contains("63") && e.contains(&base59),
            "{e}"
        );
        assert!(!e.contains('\n'));
        // MySQL allows 64.
        assert_eq!(
            reroute(&p, Engine::Mysql, &base59, 3),
            Decision::Reroute(format!("{base59}_jw03"))
        );
        let e = p.render(Engine::Mysql, &"b".repeat(60), &w(3)).unwrap_err();
        assert!(e.contains("65 bytes") && e.contains("64"), "{e}");
        // Bytes, not characters.
        let e = p
            .decide(Engine::Postgres, &"é".repeat(30), &w(3))
            .unwrap_err();
        assert!(e.contains("65 bytes"), "{e}");
    }

    #[test]
    fn render_has_no_checks_but_length() {
        let p = Policy::default();
        assert_eq!(
            p.render(Engine::Postgres, "postgres", &w(2)).unwrap(),
            "postgres_jw02"
        );
        assert_eq!(
            p.render(Engine::Postgres, "x_jw02", &w(2)).unwrap(),
            "x_jw02_jw02"
        );
        let p = Policy::from_toml(
            "[mysql]\ntemplate = \"{db}_{worker:03}_of_{worker_count}\"",
            "p",
        )
        .unwrap();
        assert_eq!(
            p.render(Engine::Mysql, "d", &Worker { num: 7, count: 12 })
                .unwrap(),
            "d_007_of_12"
        );
        assert_eq!(
            p.render(
                Engine::Mysql,
                "d",
                &Worker {
                    num: 1234,
                    count: 12
                }
            )
            .unwrap(),
            "d_1234_of_12"
        );
        assert_eq!(p.render(Engine::Postgres, "d", &w(1)).unwrap(), "d_jw01");
    }

    #[test]
    fn lists_and_globs() {
        let text = r#"
[postgres]
reroute = ["myapp", "myapp_*", "t?st"]
skip = ["myapp_legacy*"]
"#;
        let p = Policy::from_toml(text, "/x/p.toml").unwrap();
        let pg = Engine::Postgres;
        assert_eq!(
            reroute(&p, pg, "myapp", 1),
            Decision::Reroute("myapp_jw01".into())
        );
        assert_eq!(
            reroute(&p, pg, "myapp_x", 1),
            Decision::Reroute("myapp_x_jw01".into())
        );
        assert_eq!(
            reroute(&p, pg, "myapp_", 1),
            Decision::Reroute("myapp__jw01".into())
        );
        assert_eq!(
            reroute(&p, pg, "test", 1),
            Decision::Reroute("test_jw01".into())
        );
        assert_eq!(reroute(&p, pg, "teest", 1), Decision::Keep(Keep::NotListed));
        assert_eq!(reroute(&p, pg, "other", 1), Decision::Keep(Keep::NotListed));
        assert_eq!(
            reroute(&p, pg, "myapp_legacy_1", 1),
            Decision::Keep(Keep::Skipped)
        );
        // The MySQL side still uses the defaults.
        assert_eq!(
            reroute(&p, Engine::Mysql, "other", 1),
            Decision::Reroute("other_jw01".into())
        );
        let g = |p: &str, n: &str| Glob::new(p).matches(&n.chars().collect::<Vec<_>>());
        assert!(g("*", ""));
        assert!(g("*", "abc"));
        assert!(g("a*b*c", "aXXbYYc"));
        assert!(g("a*b*c", "abcbc"));
        assert!(!g("a*b*c", "aXXbYY"));
        assert!(g("**a", "a"));
        assert!(g("?é?", "xéy"));
        assert!(!g("?", ""));
        assert!(!g("", "a"));
        assert!(g("", ""));
        assert!(g("a*", "a"));
        assert!(!g("abc", "ab"));
        // An empty allow-list keeps everything.
        let p = Policy::from_toml("[mysql]\nreroute = []", "p").unwrap();
        assert_eq!(
            reroute(&p, Engine::Mysql, "x", 1),
            Decision::Keep(Keep::NotListed)
        );
    }

    #[test]
    fn decision_order() {
        let text = "[postgres]\nreroute=[\"*\"]\nskip=[\"postgres\", \"*_jw*\", \"s*\"]\n";
        let p = Policy::from_toml(text, "p").unwrap();
        assert_eq!(
            reroute(&p, Engine::Postgres, "postgres", 1),
            Decision::Keep(Keep::System)
        );
        assert_eq!(
            reroute(&p, Engine::Postgres, "a_jw01", 1),
            Decision::Keep(Keep::AlreadyRerouted)
        );
        assert_eq!(
            reroute(&p, Engine::Postgres, "shared", 1),
            Decision::Keep(Keep::Skipped)
        );
        let p = p.with_env(&env(&[("DAGZ_DISABLE", "pg")])).unwrap();
        assert_eq!(
            reroute(&p, Engine::Postgres, "postgres", 1),
            Decision::Keep(Keep::EngineDisabled)
        );
        assert_eq!(
            reroute(&p, Engine::Postgres, "", 1),
            Decision::Keep(Keep::Empty)
        );
    }

    #[test]
    fn disable_env() {
        let on = |v: &str| {
            let p = Policy::default()
                .with_env(&env(&[("DAGZ_DISABLE", v)]))
                .unwrap();
            (p.enabled(Engine::Postgres), p.enabled(Engine::Mysql))
        };
        assert_eq!(on(""), (true, true));
        assert_eq!(on("0"), (true, true));
        assert_eq!(on("1"), (false, false));
        assert_eq!(on("true"), (false, false));
        assert_eq!(on("all"), (false, false));
        assert_eq!(on("pg"), (false, true));
        assert_eq!(on("mysql"), (true, false));
        assert_eq!(on("pg,mysql"), (false, false));
        assert_eq!(on(" PG , "), (false, true));
        let p = Policy::default().with_env(&env(&[])).unwrap();
        assert!(p.enabled(Engine::Postgres));
        let e = Policy::default()
            .with_env(&env(&[("DAGZ_DISABLE", "maybe")]))
            .unwrap_err();
        assert!(e.starts_with("DAGZ_DISABLE=\"maybe\""), "{e}");
        assert!(Policy::default()
            .with_env(&env(&[("DAGZ_DISABLE", "pg,oracle")]))
            .is_err());
        assert_eq!(
            reroute(
                &Policy::default()
                    .with_env(&env(&[("DAGZ_DISABLE", "1")]))
                    .unwrap(),
                Engine::Mysql,
                "a",
                1
            ),
            Decision::Keep(Keep::EngineDisabled)
        );
    }

    #[test]
    fn toml_switches() {
        let p = Policy::from_toml("disable = true", "p").unwrap();
        assert!(!p.enabled(Engine::Postgres) && !p.enabled(Engine::Mysql));
        let p = Policy::from_toml("[mysql]\nenabled = false\n", "p").unwrap();
        assert!(p.enabled(Engine::Postgres) && !p.enabled(Engine::Mysql));
        let p = Policy::from_toml("postgres.enabled = false\n", "p").unwrap();
        assert!(!p.enabled(Engine::Postgres));
        let p = Policy::from_toml("", "p").unwrap();
        assert!(p.enabled(Engine::Postgres));
        let p = Policy::from_toml("# only a comment\n[postgres]\n[mysql]\n", "p").unwrap();
        assert!(p.enabled(Engine::Mysql));
    }

    fn toml_err(text: &str) -> String {
        let e = Policy::from_toml(text, "/x/p.toml").unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.starts_with("dagz: policy /x/p.toml"), "{e}");
        e
    }

    #[test]
    fn toml_errors_name_line_and_key() {
        let e = toml_err("# c\n\n[postgres]\ntempalte = \"{db}_x\"\n");
        assert!(
            e.starts_with("dagz: policy /x/p.toml line 4: unknown key \"tempalte\" in [postgres]"),
            "{e}"
        );
        let e = toml_err("[mysql]\nreroute = \"myapp\"\n");
        assert!(
            e.starts_with(
                "dagz: policy /x/p.toml line 2: key \"reroute\" must be a list of strings"
            ),
            "{e}"
        );
        let e = toml_err("[mysql]\n\nskip = [\"a\", 1]\n");
        assert!(
            e.starts_with("dagz: policy /x/p.toml line 3: key \"skip\" must be a list of strings"),
            "{e}"
        );
        let e = toml_err("\n[pg]\nenabled = true\n");
        assert!(
            e.starts_with("dagz: policy /x/p.toml line 2: unknown key \"pg\""),
            "{e}"
        );
        let e = toml_err("disable = 1\n");
        assert!(
            e.contains("line 1: key \"disable\" must be true or false"),
            "{e}"
        );
        let e = toml_err("[postgres]\nenabled = \"yes\"\n");
        assert!(
            e.contains("line 2: key \"enabled\" must be true or false"),
            "{e}"
        );
        let e = toml_err("postgres = 3\n");
        assert!(
            e.contains("line 1: key \"postgres\" must be a table"),
            "{e}"
        );
        let e = toml_err("[postgres]\ntemplate = 5\n");
        assert!(
            e.contains("line 2: key \"template\" must be a string"),
            "{e}"
        );
        let e = toml_err("[postgres]\ntemplate = 1979-05-27\n");
        assert!(
            e.contains("line 2: key \"template\" must be a string"),
            "{e}"
        );
        // Syntax errors carry toml's own message and a line.
        let e = toml_err("[postgres]\nenabled = \n");
        assert!(e.contains("line 2:"), "{e}");
        let e = toml_err("[postgres]\nenabled = true\nenabled = false\n");
        assert!(e.contains("line 3:"), "{e}");
    }

    #[test]
    fn toml_errors_in_dotted_and_nested_keys() {
        let e = toml_err("disable = false\npostgres.tempalte = \"x\"\n");
        assert!(
            e.contains("line 2: unknown key \"tempalte\" in [postgres]"),
            "{e}"
        );
        let e = toml_err("[mysql]\nenabled = true\n\n[mysql.extra]\nx = 1\n");
        assert!(
            e.contains("line 4: unknown key \"extra\" in [mysql]"),
            "{e}"
        );
        let e = toml_err("[postgres]\nskip = [\"a\",\n  \"b\",\n  3]\n");
        assert!(
            e.contains("line 2: key \"skip\" must be a list of strings"),
            "{e}"
        );
        let e = toml_err("mysql = { template = \"{worker}\" }\n");
        assert!(
            e.contains("line 1: key \"template\": template must contain {db}"),
            "{e}"
        );
        let e = toml_err("[postgres]\nreroute = [[\"a\"]]\n");
        assert!(e.contains("must be a list of strings"), "{e}");
    }

    #[test]
    fn template_validation() {
        let bad = [
            ("x_{worker}", "{db}"),
            ("{db}_{db}", "exactly once"),
            ("{db}_{host}", "unknown placeholder {host}"),
            ("{db}_{worker:2}", "unknown placeholder"),
            ("{db}_{worker:0}", "unknown placeholder"),
            ("{db}_{worker", "without a closing"),
            ("{db}_}", "without an opening"),
            ("{db}'", "quotes"),
            ("{db}\\\"", "quotes"),
            ("{db}\\\\", "backslashes"),
            ("{db}\\u0000", "control"),
            ("{db}\\n", "control"),
            ("", "{db}"),
        ];
        for (t, want) in bad {
            let e = toml_err(&format!("\n[postgres]\ntemplate = \"{t}\"\n"));
            assert!(
                e.contains("line 3: key \"template\"") && e.contains(want),
                "{t}: {e}"
            );
        }
        for good in [
            "{db}",
            "{db}_{worker}",
            "t_{db}_{worker:05}",
            "{db}{worker_count}x",
        ] {
            assert!(
                Policy::from_toml(&format!("[mysql]\ntemplate = \"{good}\""), "p").is_ok(),
                "{good}"
            );
        }
    }

    proptest! {
        #[test]
        fn decide_never_panics(name in "\\PC{0,80}", num in 0u32..2000, text in "\\PC{0,60}") {
            let p = Policy::default();
            let _ = p.decide(Engine::Postgres, &name, &Worker { num, count: 4 });
            let _ = p.decide(Engine::Mysql, &name, &Worker { num, count: 4 });
            let _ = Policy::from_toml(&text, "p");
            let _ = Policy::default().with_env(&|_: &str| Some(text.clone()));
            let _ = worker_from_env(&|_: &str| Some(text.clone()));
        }

        #[test]
        fn reroute_is_idempotent(name in "[a-z_][a-z0-9_]{0,40}", num in 0u32..500) {
            let p = Policy::default();
            let w = Worker { num, count: 4 };
            if let Decision::Reroute(new) = p.decide(Engine::Postgres, &name, &w).unwrap() {
                prop_assert!(new.starts_with(&name));
                prop_assert_eq!(p.decide(Engine::Postgres, &new, &w).unwrap(), Decision::Keep(Keep::AlreadyRerouted));
            }
        }

        #[test]
        fn glob_star_matches_like_regex(pat in "[ab*?]{0,8}", name in "[ab]{0,10}") {
            let re = format!("^{}$", pat.replace('*', ".*").replace('?', "."));
            let want = regex_lite_match(&re, &name);
            prop_assert_eq!(Glob::new(&pat).matches(&name.chars().collect::<Vec<_>>()), want);
        }
    }

    /// A tiny backtracking matcher for `^…$` patterns over `a`, `b`, `.` and `.*` (test oracle).
    fn regex_lite_match(re: &str, s: &str) -> bool {
        fn go(p: &[char], s: &[char]) -> bool {
            match p {
                [] => s.is_empty(),
                ['.', '*', rest @ ..] => (0..=s.len()).any(|i| go(rest, &s[i..])),
                [c, rest @ ..] => match s.split_first() {
                    Some((h, t)) => (*c == '.' || c == h) && go(rest, t),
                    None => false,
                },
            }
        }
        let p: Vec<char> = re
            .trim_start_matches('^')
            .trim_end_matches('$')
            .chars()
            .collect();
        let s: Vec<char> = s.chars().collect();
        go(&p, &s)
    }
}
