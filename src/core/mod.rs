//! The pure core: everything that decides, parses or rewrites without touching the process.
//! No `unsafe` here (forbidden), no I/O except through injected traits and closures, so every
//! function is unit-testable and fuzzable without a process, a server or a dynamic linker.
#![forbid(unsafe_code)]

pub mod abi;
pub mod conninfo;
pub mod decision;
pub mod message;
pub mod mysql_sql;
pub mod policy;
pub mod rename;
pub mod txn;
