//! Which MySQL/MariaDB statements can change a connection's current database, and how
//! (issue 12). Pure. Every statement a hooked client sends goes through [`classify`], so a
//! statement that cannot change the database must be turned away quickly: the filters of
//! `filter.rs` ([`not_use`]) pass a `SELECT`/`INSERT`/`UPDATE`/`DELETE`/`REPLACE` statement from
//! its first keyword, and any statement without a `USE`, `EXECUTE` or `PREPARE` word; only the
//! others are lexed.
//!
//! # Grammar
//!
//! The statement is lexed as the server does (strings, quoted identifiers, `#`, `-- ` and `/* */`
//! comments skipped, executable comments `/*! */` and `/*M! */` read as code, `;` separating
//! statements; one trailing NUL byte is ignored, as the server does), in every reading the server
//! can have (`NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`, versioned executable comments running or not).
//! Readings that disagree are refused. In one reading:
//!
//! * a `USE` word that is not an index hint (`USE INDEX`, `USE KEY`) and not a qualified name
//!   (`t.use`) is a *USE occurrence*;
//! * `EXECUTE IMMEDIATE src` and `PREPARE name FROM src` are *dynamic SQL*: `src` must be string
//!   literals (optionally with a `_charset`/`N` introducer; adjacent literals concatenate), whose
//!   value is classified in turn; a statement in it that can change the database, or a source that
//!   is not a literal (`@var`, `CONCAT(…)`, `X'…'`), is refused.
//!
//! Then: no occurrence and no refused dynamic SQL → [`Class::NotUse`]. Exactly one statement (any
//! number of empty `;` around it) made of exactly `USE` and one name — unquoted or backtick-quoted,
//! not in an executable comment, with comments and whitespace anywhere — → [`Class::Use`], whose
//! name the caller replaces exactly ([`rewrite`]). Every other occurrence (several statements,
//! anything after the name, a quoted-string name, `USE` in an executable comment, an unterminated
//! quote or comment) → [`Class::Refuse`].

mod calls;
mod filter;
mod lex;
#[cfg(test)]
mod tests;

pub use calls::{call_targets, CallTarget};
pub use filter::{
    first_keyword_end, has_call_word, may_change_db, not_use, not_use_by, safe_single_statement,
};
use lex::{Kind, Lexed, Mode, Tok};

/// A `USE` statement dagz can rewrite exactly: the database name and the byte range of its token
/// (backticks included) in the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseStmt {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

/// Why a statement that may change the database cannot be rewritten exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `USE` in a string with several statements (`USE a; SELECT 1`).
    MultiStatement,
    /// `USE` with something dagz does not rewrite (`USE a b`, `USE 'a'`, an unterminated comment).
    Unparsable,
    /// `USE` inside an executable comment (`/*!USE a*/`).
    ExecComment,
    /// A statement that can change the database inside `EXECUTE IMMEDIATE` / `PREPARE … FROM`.
    InDynamicSql,
    /// `EXECUTE IMMEDIATE` / `PREPARE … FROM` whose source is not a string literal.
    DynamicSource,
    /// The server's `sql_mode` or version decides what the statement does.
    ModeDependent,
    /// The database name is not UTF-8.
    NotUtf8,
    /// `CALL` of a procedure whose body can change the database.
    Call,
    /// `CALL` of a procedure whose body dagz cannot read, or whose name the text does not say.
    CallUnknown,
    /// `CALL` inside `EXECUTE IMMEDIATE` / `PREPARE … FROM`.
    CallInDynamicSql,
}

impl Reason {
    pub fn text(self) -> &'static str {
        match self {
            Reason::MultiStatement => "USE in a string of several statements",
            Reason::Unparsable => "a USE statement dagz cannot rewrite exactly",
            Reason::ExecComment => "USE inside an executable comment (/*! */)",
            Reason::InDynamicSql => "USE inside EXECUTE IMMEDIATE / PREPARE ... FROM",
            Reason::DynamicSource => {
                "EXECUTE IMMEDIATE / PREPARE ... FROM whose source is not a string literal (it could run USE)"
            }
            Reason::ModeDependent => {
                "a statement whose USE depends on the server's sql_mode or version (backslashes in quotes, /*!NNNNN */)"
            }
            Reason::NotUtf8 => "USE of a database name that is not UTF-8",
            Reason::Call => {
                "CALL of a procedure of the current database whose body runs EXECUTE IMMEDIATE / \
                 PREPARE ... FROM that can change it (MariaDB keeps the change after CALL)"
            }
            Reason::CallUnknown => {
                "CALL of a procedure whose body dagz cannot read (it could change the current \
                 database)"
            }
            Reason::CallInDynamicSql => {
                "CALL inside EXECUTE IMMEDIATE / PREPARE ... FROM (the procedure could change the \
                 current database)"
            }
        }
    }
}

/// What a statement does to the connection's current database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Cannot change it: send unchanged.
    NotUse,
    /// A single `USE` that can be rewritten exactly.
    Use(UseStmt),
    /// May change it and cannot be rewritten exactly. `name`: the database it would switch to,
    /// when that is one known name.
    Refuse {
        reason: Reason,
        name: Option<String>,
    },
}

impl Class {
    fn refuse(reason: Reason, name: Option<String>) -> Class {
        Class::Refuse { reason, name }
    }
}

/// Nesting of dynamic SQL followed (`EXECUTE IMMEDIATE 'EXECUTE IMMEDIATE ''…'''`).
const MAX_DEPTH: u8 = 3;

/// The classification of one statement (the bytes sent, for a NUL-terminated string without
/// its NUL).
pub fn classify(stmt: &[u8]) -> Class {
    if not_use(stmt) {
        return Class::NotUse;
    }
    classify_full(stmt)
}

/// [`classify`] without the quick filters: the same result, except that a statement
/// [`safe_single_statement`] passes is `NotUse` in [`classify`] whatever words its first
/// statement has (tested).
pub fn classify_full(stmt: &[u8]) -> Class {
    classify_at(stmt, 0)
}

fn classify_at(stmt: &[u8], depth: u8) -> Class {
    // The server ignores one NUL byte at the very end of a statement.
    let body = stmt.strip_suffix(&[0]).unwrap_or(stmt);
    let first = lex::lex(body, Mode::DEFAULT);
    let ambiguous = first.saw_backslash || first.saw_versioned;
    let class = judge(body, &first, Mode::DEFAULT, depth);
    if !ambiguous {
        return class;
    }
    for mode in &Mode::ALL[1..] {
        if judge(body, &lex::lex(body, *mode), *mode, depth) != class {
            return Class::refuse(Reason::ModeDependent, None);
        }
    }
    class
}

fn word_is(s: &[u8], t: Option<&Tok>, w: &[u8]) -> bool {
    t.is_some_and(|t| t.kind == Kind::Word && s[t.start..t.end].eq_ignore_ascii_case(w))
}

/// The classification of one reading.
fn judge(s: &[u8], lx: &Lexed, mode: Mode, depth: u8) -> Class {
    let t = &lx.toks;
    let mut uses = Vec::new();
    for k in 0..t.len() {
        let w = |d: usize, word: &[u8]| word_is(s, t.get(k + d), word);
        if w(0, b"use") {
            let qualified = k > 0 && t[k - 1].kind == Kind::Dot;
            let hint = w(1, b"index") || w(1, b"key");
            let dotted = t.get(k + 1).is_some_and(|n| n.kind == Kind::Dot);
            if !(qualified || hint || dotted) {
                uses.push(k);
            }
        } else if w(0, b"execute") && w(1, b"immediate") {
            if let Some(r) = dynamic(s, t, k + 2, mode, depth) {
                return r;
            }
        } else if w(0, b"prepare")
            && t.get(k + 1)
                .is_some_and(|n| matches!(n.kind, Kind::Word | Kind::Backtick))
            && w(2, b"from")
        {
            if let Some(r) = dynamic(s, t, k + 3, mode, depth) {
                return r;
            }
        }
    }
    match uses.as_slice() {
        [] => Class::NotUse,
        [k] => single_use(s, lx, *k),
        _ => Class::refuse(Reason::MultiStatement, None),
    }
}

/// The name token after the `USE` at `k`, if it is one dagz can read.
fn use_name(s: &[u8], t: &[Tok], k: usize) -> Option<Vec<u8>> {
    let n = t.get(k + 1)?;
    match n.kind {
        Kind::Word => Some(s[n.start..n.end].to_vec()),
        Kind::Backtick => Some(lex::backtick_value(s, n)).filter(|v| !v.is_empty()),
        _ => None,
    }
}

/// The one USE occurrence at token `k`: rewritable, or refused with its name when known.
fn single_use(s: &[u8], lx: &Lexed, k: usize) -> Class {
    let t = &lx.toks;
    let name = use_name(s, t, k);
    let name_str = name
        .as_ref()
        .and_then(|n| String::from_utf8(n.clone()).ok());
    let statements = t
        .split(|x| x.kind == Kind::Semi)
        .filter(|p| !p.is_empty())
        .count();
    let only_semis_before = t[..k].iter().all(|x| x.kind == Kind::Semi);
    let only_semis_after = t
        .get(k + 2..)
        .is_some_and(|r| r.iter().all(|x| x.kind == Kind::Semi));
    if statements > 1 {
        return Class::refuse(Reason::MultiStatement, name_str);
    }
    if !(only_semis_before && only_semis_after) || name.is_none() || lx.unterminated {
        return Class::refuse(Reason::Unparsable, name_str);
    }
    if t[k].exec || t[k + 1].exec {
        return Class::refuse(Reason::ExecComment, name_str);
    }
    match name_str {
        None => Class::refuse(Reason::NotUtf8, None),
        Some(name) => Class::Use(UseStmt {
            name,
            start: t[k + 1].start,
            end: t[k + 1].end,
        }),
    }
}

/// The source of dynamic SQL starting at token `k`: `None` when it cannot change the database.
fn dynamic(s: &[u8], t: &[Tok], mut k: usize, mode: Mode, depth: u8) -> Option<Class> {
    let is_str = |t: Option<&Tok>| t.is_some_and(|t| matches!(t.kind, Kind::SQuote | Kind::DQuote));
    if let Some(w) = t.get(k).filter(|w| w.kind == Kind::Word) {
        let text = &s[w.start..w.end];
        if (text[0] == b'_' || text.eq_ignore_ascii_case(b"n")) && is_str(t.get(k + 1)) {
            k += 1;
        }
    }
    if !is_str(t.get(k)) {
        return Some(Class::refuse(Reason::DynamicSource, None));
    }
    let mut value = Vec::new();
    while is_str(t.get(k)) {
        lex::string_value(s, &t[k], mode, &mut value);
        k += 1;
    }
    if depth >= MAX_DEPTH {
        return Some(Class::refuse(Reason::InDynamicSql, None));
    }
    if !call_targets(&value).is_empty() {
        // A CALL in dynamic SQL: its procedure's body is not read (the hook reads those of
        // plain CALL statements only).
        return Some(Class::refuse(Reason::CallInDynamicSql, None));
    }
    match classify_inner(&value, depth + 1) {
        Class::NotUse => None,
        Class::Use(u) => Some(Class::refuse(Reason::InDynamicSql, Some(u.name))),
        Class::Refuse { name, .. } => Some(Class::refuse(Reason::InDynamicSql, name)),
    }
}

fn classify_inner(stmt: &[u8], depth: u8) -> Class {
    if not_use(stmt) {
        return Class::NotUse;
    }
    classify_at(stmt, depth)
}

/// `stmt` with the name of the recognised `u` replaced by `new` (backtick-quoted), every other byte
/// kept.
pub fn rewrite(stmt: &[u8], u: &UseStmt, new: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(stmt.len() + new.len() + 4);
    out.extend_from_slice(&stmt[..u.start]);
    out.push(b'`');
    out.extend_from_slice(new.replace('`', "``").as_bytes());
    out.push(b'`');
    out.extend_from_slice(&stmt[u.end..]);
    out
}

/// The one-line refusal (without `dagz:`) of a statement refused for `reason` by `via`;
/// `target`: the database it would switch to and the one dagz would use instead, when known.
pub fn refusal_message(via: &str, reason: Reason, target: Option<(&str, &str)>) -> String {
    let what = reason.text();
    if matches!(
        reason,
        Reason::Call | Reason::CallUnknown | Reason::CallInDynamicSql
    ) {
        let into = target.map_or(String::new(), |(name, new)| {
            format!(" (into the shared database {name:?} instead of {new:?})")
        });
        return format!(
            "{via}: refused {what}: it could move this connection out of its worker \
             database{into}; run it under dagz.bypass() / dagz_bypass_enter() if it must run"
        );
    }
    match target {
        Some((name, new)) => format!(
            "{via}: refused {what}: it would switch this connection to the shared database {name:?} \
             instead of {new:?}; send `USE {name}` as a statement of its own (or call \
             mysql_select_db) so that dagz can reroute it"
        ),
        None => format!(
            "{via}: refused {what}: dagz cannot tell which database it would switch to; use a \
             plain `USE name` statement, or run it under dagz.bypass() / dagz_bypass_enter()"
        ),
    }
}
