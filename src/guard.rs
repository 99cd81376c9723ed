//! Thread-local state of the shim: the caller address noted by the trampolines, the user-visible
//! bypass depth, the "inside the real function" marker (libpq/libmariadb call their own exports
//! through the PLT, notes §4) and the re-entrancy guard around the decision callback (notes §9).
//!
//! All of it is `const`-initialised `Cell`s without destructors: access never allocates, never
//! registers a TLS destructor and never panics, even while a thread is exiting.

use std::cell::Cell;

thread_local! {
    static CALLER: Cell<usize> = const { Cell::new(0) };
    static BYPASS: Cell<u32> = const { Cell::new(0) };
    static INSIDE: [Cell<usize>; 2] = const { [Cell::new(0), Cell::new(0)] };
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
    static LAST_SITE: [Cell<(usize, usize)>; 2] = const { [Cell::new((0, 0)), Cell::new((0, 0))] };
}

/// Called by the asm trampolines with the hook's return address before they jump to the hook body.
pub extern "C" fn note_caller(ret: usize) {
    CALLER.with(|c| c.set(ret));
}

/// The return address of the hooked call currently being served on this thread.
pub fn caller() -> usize {
    CALLER.with(|c| c.get())
}

pub fn bypass_enter() -> u32 {
    BYPASS.with(|b| {
        let d = b.get().saturating_add(1);
        b.set(d);
        d
    })
}

/// Leaves one level; `None` when the bypass was not entered (unbalanced exit).
pub fn bypass_exit() -> Option<u32> {
    BYPASS.with(|b| {
        let d = b.get().checked_sub(1)?;
        b.set(d);
        Some(d)
    })
}

pub fn bypass_depth() -> u32 {
    BYPASS.with(|b| b.get())
}

/// Which hooked library family an "inside" marker belongs to.
#[derive(Clone, Copy)]
pub enum Slot {
    Pg = 0,
    Mysql = 1,
}

/// The real-function table (an opaque address) of the copy whose real function is running on this
/// thread for `slot`, or 0.
pub fn inside(slot: Slot) -> usize {
    INSIDE.with(|c| c[slot as usize].get())
}

/// Marks "inside the real function of table `id`" until the returned guard drops (nestable: restores
/// the previous value, libfaketime style).
pub struct Inside(Slot, usize);
pub fn enter_inside(slot: Slot, id: usize) -> Inside {
    Inside(slot, INSIDE.with(|c| c[slot as usize].replace(id)))
}
impl Drop for Inside {
    fn drop(&mut self) {
        INSIDE.with(|c| c[self.0 as usize].set(self.1));
    }
}

/// One-entry per-thread cache of the last call site and its real-function table (an opaque
/// address), so that a hot hook (`mysql_query`) costs a few instructions, not a locked map lookup.
pub fn last_site(slot: Slot, caller: usize) -> Option<usize> {
    let (site, table) = LAST_SITE.with(|c| c[slot as usize].get());
    (site == caller && table != 0).then_some(table)
}

pub fn set_last_site(slot: Slot, caller: usize, table: usize) {
    LAST_SITE.with(|c| c[slot as usize].set((caller, table)));
}

pub fn in_callback() -> bool {
    IN_CALLBACK.with(|c| c.get())
}

pub struct InCallback(bool);
pub fn enter_callback() -> InCallback {
    InCallback(IN_CALLBACK.with(|c| c.replace(true)))
}
impl Drop for InCallback {
    fn drop(&mut self) {
        IN_CALLBACK.with(|c| c.set(self.0));
    }
}
