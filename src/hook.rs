//! The skeleton every hook body shares (libpq and the MySQL client alike):
//!
//! 1. inside a real function of a library copy (libpq and libmariadb call their own exports
//!    through the PLT): pass straight through to that same copy;
//! 2. find the copy this call site uses (`resolve`); none that is safe to call: refuse;
//! 3. under the thread's bypass: pass through;
//! 4. else compute the rewrite behind the panic boundary: `Ok(None)` passes through, `Ok(Some(r))`
//!    is the result of the real call with new arguments, `Err` refuses (the hook's own way of
//!    failing with a `dagz:` message, never the un-rerouted database).

use crate::boundary;
use crate::guard::{self, Slot};
use crate::resolve::Family;

/// A table of one library copy's real functions.
pub trait RealTable: Sync + Sized + 'static {
    /// This table type's "inside a real function" cell: only [`call_real`] of this type stores
    /// into it, and only addresses of `&'static Self`.
    const SLOT: Slot;
    /// Where the tables of this family are found.
    fn family() -> &'static Family<Self>;
}

/// Calls `f` marked as inside the real functions of `real`.
#[inline(always)]
pub fn call_real<T: RealTable, R>(real: &'static T, f: impl FnOnce() -> R) -> R {
    guard::inside_call(T::SLOT, real as *const T as usize, f)
}

/// The table of the copy whose real function is running on this thread, if any.
#[inline(always)]
fn inside<T: RealTable>() -> Option<&'static T> {
    let p = guard::inside(T::SLOT);
    // SAFETY: non-zero values of `T::SLOT` are only stored by `call_real::<T>`, from a
    // `&'static T` (see `RealTable::SLOT`).
    (p != 0).then(|| unsafe { &*(p as *const T) })
}

/// Runs one hooked call (see the module docs). `pass(real)` calls the real function with the
/// caller's arguments; `rewrite(real)` may call it with new ones; `refuse(real, msg)` fails the
/// call (`real` is `None` when no copy may be called).
#[inline(always)]
pub fn run<T: RealTable, R>(
    caller: usize,
    pass: impl FnOnce(&'static T) -> R,
    rewrite: impl FnOnce(&'static T) -> Result<Option<R>, String>,
    refuse: impl FnOnce(Option<&'static T>, &str) -> R,
) -> R {
    if let Some(real) = inside::<T>() {
        return call_real(real, || pass(real));
    }
    let real = match boundary::catch(|| T::family().for_caller(caller)) {
        Ok(r) => r,
        Err(e) => return refuse(None, &e),
    };
    if guard::bypass_depth() > 0 {
        return call_real(real, || pass(real));
    }
    match boundary::catch(|| rewrite(real)) {
        Ok(Some(r)) => r,
        Ok(None) => call_real(real, || pass(real)),
        Err(msg) => refuse(Some(real), &msg),
    }
}

/// A hooked call with nothing to rewrite (statements, `PQfinish`, `mysql_close`): `f` on the
/// caller's copy — the cached table, else through [`run`]; `fail` when no copy may be called
/// (logged, naming `what`).
#[inline(always)]
pub fn pass<T: RealTable, R>(
    caller: usize,
    what: &str,
    f: impl FnOnce(&'static T) -> R,
    fail: impl FnOnce() -> R,
) -> R {
    match T::family().cached(caller) {
        Some(real) => f(real),
        None => run(
            caller,
            f,
            |_| Ok(None),
            |_, msg| {
                crate::dlog!(crate::log::Level::Error, "no safe real {what}: {msg}");
                fail()
            },
        ),
    }
}
