//! libpq connection strings: find the database libpq would connect to and rewrite it, changing
//! no other byte.
//!
//! This follows libpq's own parser (`fe-connect.c`, PostgreSQL 15–18) rule for rule:
//!
//! * `key=value` conninfo (`conninfo_parse`): blanks around `=` are skipped (so `dbname= user=x`
//!   sets dbname to `user=x`), unquoted values end at whitespace and take backslash escapes, quoted
//!   values `'…'` take `\'` and `\\`, the last setting of a keyword wins, an empty value is an
//!   explicit empty setting.
//! * URIs (`conninfo_uri_parse_options`): `postgresql://` or `postgres://`, userinfo found by looking
//!   ahead for `@` before the first `/`, several `host[:port]` separated by commas, `[v6]` hosts,
//!   the dbname is the whole path up to `?` (an empty path sets nothing), query parameters override
//!   it, every part is percent-decoded (bad escapes and `%00` are errors, `+` is not a space).
//! * keyword arrays (`conninfo_array_parse`): NULL and empty values are skipped, and with
//!   `expand_dbname` only the first non-NULL `dbname` is looked at; if it is a connection string
//!   its settings are applied at its position.
//! * defaults (`conninfo_add_defaults`, `parseServiceInfo`, `connectOptions2`): when no dbname is
//!   given the service file's, then `PGDATABASE`, then the user name is used.
//!
//! Nothing here does I/O except through [`PgEnv`]. Error messages never contain a value from the
//! input (so never a password).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

/// Environment the rewriter may consult (the real implementation reads env vars, files and the
/// password database).
pub trait PgEnv {
    /// An environment variable: `PGDATABASE`, `PGUSER`, `PGSERVICE`, `PGSERVICEFILE`,
    /// `PGSYSCONFDIR`, `HOME`. `Some("")` is "set but empty" (libpq treats some of those differently
    /// from unset).
    fn var(&self, name: &str) -> Option<String>;
    /// What libpq's `pg_fe_getauthname` would give (the effective uid's login name).
    fn os_user(&self) -> Option<String>;
    /// The contents of a file (for `pg_service.conf`); `None` if it cannot be read.
    fn read_file(&self, path: &str) -> Option<String>;
}

/// Called exactly once per rewrite call with the *effective* database name (the one libpq would
/// use): `Ok(Some(new))` reroutes, `Ok(None)` keeps, `Err(msg)` refuses the connect.
pub type Decide<'a> = dyn FnMut(&str) -> Result<Option<String>, String> + 'a;

/// A keyword/value list as `PQconnectdbParams` takes it (values may be NULL).
pub type ParamList = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Why a rewrite failed. Messages are one line and never contain a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteError {
    /// The input is something libpq would reject too (or the effective name cannot be known).
    Syntax(String),
    /// The decision refused the connect (the decision's own message).
    Refused(String),
}

impl fmt::Display for RewriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RewriteError::Syntax(m) => write!(f, "invalid connection string: {m}"),
            RewriteError::Refused(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RewriteError {}

fn syntax(m: impl Into<String>) -> RewriteError {
    RewriteError::Syntax(m.into())
}

mod bytes;
mod effective;
mod keywords;
mod parse;
mod quote;
mod redact;
mod rewrite;
mod service;
mod settings;
#[cfg(test)]
mod tests;
mod uri;
mod url;

use bytes::*;
use effective::*;
use keywords::*;
use parse::*;
use quote::*;
use service::*;
use uri::*;

pub use keywords::recognized_connection_string;
pub use parse::parse_options;
pub use redact::redact;
pub use rewrite::{rewrite_conninfo, rewrite_params, rewrite_setdb};
pub use settings::{settings_of_conninfo, settings_of_params, settings_of_setdb, Settings};
pub use url::{url_get_db, url_set_db};
