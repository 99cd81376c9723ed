//! Panic boundary: nothing panics or unwinds into the host process (rustls-ffi style). Every
//! exported body runs inside [`catch`], which turns a panic into an error value.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`; a panic becomes `Err("internal error: …")`.
pub fn catch<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(format!("internal error: {what}"))
        }
    }
}

/// Runs `f` for an export with a plain return value; a panic returns `fail`.
pub fn or<T>(fail: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fail)
}
