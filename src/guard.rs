//! Thread-local state of the shim: the caller address noted by the TLS trampolines, the
//! user-visible bypass depth, the "inside the real function" marker (libpq/libmariadb call their
//! own exports through the PLT), the re-entrancy guard around the decision callback
//! (a connect made by the callback itself is not decided again).
//!
//! One `const`-initialised struct of `Cell`s without destructors: access never allocates, never
//! registers a TLS destructor and never panics, even while a thread is exiting; hot hooks fetch it
//! once per call with [`with`] (each TLS access from a shared object costs a `__tls_get_addr`).

use std::cell::Cell;

/// Which hooked library family a per-family cell belongs to.
#[derive(Clone, Copy)]
pub enum Slot {
    Pg = 0,
    Mysql = 1,
}

pub struct Guard {
    caller: Cell<usize>,
    bypass: Cell<u32>,
    inside: [Cell<usize>; 2],
    in_callback: Cell<bool>,
}

thread_local! {
    static G: Guard = const {
        Guard {
            caller: Cell::new(0),
            bypass: Cell::new(0),
            inside: [Cell::new(0), Cell::new(0)],
            in_callback: Cell::new(false),
        }
    };
}

/// Runs `f` with this thread's state (one TLS access).
#[inline(always)]
pub fn with<R>(f: impl FnOnce(&Guard) -> R) -> R {
    G.with(f)
}

impl Guard {
    /// The real-function table (an opaque address) of the copy whose real function is running on
    /// this thread for `slot`, or 0.
    #[inline(always)]
    pub fn inside(&self, slot: Slot) -> usize {
        self.inside[slot as usize].get()
    }

    /// Runs `f` marked as inside the real functions of table `id` (nestable: restores the previous
    /// value afterwards, libfaketime style).
    #[inline(always)]
    pub fn inside_call<R>(&self, slot: Slot, id: usize, f: impl FnOnce() -> R) -> R {
        let prev = self.inside[slot as usize].replace(id);
        let r = f();
        self.inside[slot as usize].set(prev);
        r
    }

    #[inline(always)]
    pub fn bypass_depth(&self) -> u32 {
        self.bypass.get()
    }

    #[inline(always)]
    pub fn in_callback(&self) -> bool {
        self.in_callback.get()
    }
}

/// Called by the TLS trampolines with the hook's return address before they jump to the body.
pub extern "C" fn note_caller(ret: usize) {
    G.with(|g| g.caller.set(ret));
}

/// The return address noted by the TLS trampoline of the hooked call being served on this thread.
pub fn caller() -> usize {
    G.with(|g| g.caller.get())
}

pub fn bypass_enter() -> u32 {
    G.with(|g| {
        let d = g.bypass.get().saturating_add(1);
        g.bypass.set(d);
        d
    })
}

/// Leaves one level; `None` when the bypass was not entered (unbalanced exit).
pub fn bypass_exit() -> Option<u32> {
    G.with(|g| {
        let d = g.bypass.get().checked_sub(1)?;
        g.bypass.set(d);
        Some(d)
    })
}

pub fn bypass_depth() -> u32 {
    G.with(|g| g.bypass.get())
}

pub fn inside(slot: Slot) -> usize {
    G.with(|g| g.inside(slot))
}

/// Calls `f` marked as inside the real functions of table `id` for `slot`.
pub fn inside_call<R>(slot: Slot, id: usize, f: impl FnOnce() -> R) -> R {
    G.with(|g| g.inside_call(slot, id, f))
}

pub fn in_callback() -> bool {
    G.with(|g| g.in_callback.get())
}

/// Marks "inside the decision callback" until the returned guard drops.
pub struct InCallback(bool);
pub fn enter_callback() -> InCallback {
    InCallback(G.with(|g| g.in_callback.replace(true)))
}
impl Drop for InCallback {
    fn drop(&mut self) {
        G.with(|g| g.in_callback.set(self.0));
    }
}
