//! dagz: an LD_PRELOAD shim that sends every PostgreSQL/MySQL connection of a pytest-xdist worker to
//! that worker's own database.
//!
//! Layout: [`core`] is pure and safe (`#![forbid(unsafe_code)]`): connection strings, the policy,
//! `USE` statements, the decision as a value, the ABI's numbers. Everything that touches raw
//! pointers, the dynamic linker or the host process is beside it: `resolve` (which library copy
//! a caller uses), `trampoline` (the exported entry stubs), `hook` (the skeleton every hook body
//! shares), `hooks_pg` / `hooks_mysql`, `decide` (the decision's inputs: environ, policy cache,
//! callback; and its log line), `guard` (thread-local state), `ffi` (the `dagz_*` C ABI),
//! `boundary` (panic boundary), `cstr`, `log`.

pub mod core;
pub use self::core::{conninfo, mysql_sql, policy};

pub mod boundary;
mod cstr;
pub mod decide;
pub mod ffi;
pub mod guard;
mod hook;
pub mod hooks_mysql;
mod hooks_mysql_call;
mod hooks_mysql_stmt;
pub mod hooks_pg;
mod hooks_pg_query;
pub mod log;
mod mysql_settings;
pub mod resolve;
mod trampoline;
pub mod use_check;
