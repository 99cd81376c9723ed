//! dagz: an LD_PRELOAD shim that sends every PostgreSQL/MySQL connection of a pytest-xdist worker to
//! that worker's own database.
//!
//! Layout: the decision logic is pure and safe (`conninfo`, `policy`); everything that touches raw
//! pointers, the dynamic linker or the host process lives in `resolve`, `trampoline`, `hooks_*`,
//! `ffi`, with `decide` (policy cache, env, callback) and `guard` (thread-local state) between them.

pub mod conninfo;
pub mod mysql_sql;
pub mod policy;

pub mod boundary;
mod cstr;
pub mod decide;
pub mod ffi;
pub mod guard;
pub mod hooks_mysql;
pub mod hooks_pg;
pub mod log;
pub mod resolve;
mod trampoline;
