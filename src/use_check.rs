//! Per-test work follows use, not connects: a connection a pool kept from an earlier test gets
//! the family's `prepare` before its first statement in this test.
//!
//! The plugin calls [`begin_test`] at each test's start (a new generation). The shim remembers,
//! per rerouted connection handle (`PGconn *`, `MYSQL *`), its physical database and the
//! generation it was last prepared in: [`note`] at a rerouted connect, `USE`, `mysql_select_db`
//! or `mysql_change_user`, [`forget`] at `PQfinish` / `mysql_close` or when a handle moves to a
//! database dagz keeps. The statement hooks call [`pending`] (one relaxed load: true only while
//! checks are on and some remembered handle is of an older generation) and, when it is set,
//! [`check`]: a handle of an older generation is prepared through the registered use callback
//! (once per test and database: the plugin's own bookkeeping) before its statement runs; a
//! failed callback fails the statement with its `dagz:` message. A statement that only ends a
//! transaction ([`crate::core::txn`]) is let through without preparing.

use crate::core::abi;
use crate::guard;
use crate::policy::Engine;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// `int cb(int engine, const char *db, char *out, size_t out_len)`: 0 when `db` may be used
/// now (prepared in this test, or nothing to do), -1 with the message in `out`.
pub type UseCallback = unsafe extern "C" fn(
    engine: c_int,
    db: *const c_char,
    out: *mut c_char,
    out_len: usize,
) -> c_int;

const CB_BUF: usize = 4096;

/// Set while checks are on and some remembered handle is of an older generation.
static PENDING: AtomicBool = AtomicBool::new(false);
/// The registered [`UseCallback`], or 0.
static CALLBACK: AtomicUsize = AtomicUsize::new(0);

struct Entry {
    engine: Engine,
    db: String,
    gen: u64,
}

/// Handles are addresses: one multiplication spreads them (SipHash, the default, costs ~100
/// instructions on the slow path of every statement while a check is pending).
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[derive(Default)]
struct Registry {
    handles: HashMap<usize, Entry, BuildHasherDefault<AddrHasher>>,
    /// The current test's generation.
    gen: u64,
    /// Checks on: `dagz_begin_test` said a prepare is configured.
    check: bool,
    /// How many handles are of an older generation than `gen`.
    stale: usize,
}

impl Registry {
    fn settle(&self) {
        PENDING.store(self.check && self.stale > 0, Ordering::Relaxed);
    }

    /// Removes `h`'s entry, keeping the stale count.
    fn remove(&mut self, h: usize) {
        if let Some(e) = self.handles.remove(&h) {
            if e.gen != self.gen {
                self.stale -= 1;
            }
        }
    }
}

static REG: Mutex<Option<Registry>> = Mutex::new(None);

fn with_reg<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut g = REG.lock();
    let r = f(g.get_or_insert_with(Registry::default));
    if let Some(reg) = g.as_ref() {
        reg.settle();
    }
    r
}

/// Whether a statement must call [`check`] first: one relaxed load.
#[inline(always)]
pub fn pending() -> bool {
    PENDING.load(Ordering::Relaxed)
}

/// The handle `h` is now on the rerouted database `db` (prepared in the current test: a connect,
/// `USE` or select_db runs the decision, which prepares).
pub fn note(h: *mut c_void, engine: Engine, db: &str) {
    if h.is_null() {
        return;
    }
    with_reg(|r| {
        r.remove(h as usize);
        let gen = r.gen;
        r.handles.insert(
            h as usize,
            Entry {
                engine,
                db: db.to_owned(),
                gen,
            },
        );
    });
}

/// The handle `h` is closed, or on a database dagz keeps.
pub fn forget(h: *mut c_void) {
    if h.is_null() {
        return;
    }
    // Cheap when nothing was ever remembered (processes without rerouting).
    if REG.lock().as_ref().is_none_or(|r| r.handles.is_empty()) {
        return;
    }
    with_reg(|r| r.remove(h as usize));
}

/// A new test began: every remembered handle is of an older generation. `check`: a prepare is
/// configured, so statements on such handles call the use callback first.
pub fn begin_test(gen: u64, check: bool) {
    with_reg(|r| {
        r.gen = gen;
        r.check = check;
        r.stale = r.handles.values().filter(|e| e.gen != gen).count();
    });
}

pub fn set_callback(cb: Option<UseCallback>) {
    CALLBACK.store(cb.map_or(0, |f| f as usize), Ordering::SeqCst);
}

fn callback() -> Option<UseCallback> {
    let p = CALLBACK.load(Ordering::SeqCst);
    // SAFETY: the only non-zero values stored are `UseCallback` function pointers.
    (p != 0).then(|| unsafe { std::mem::transmute::<usize, UseCallback>(p) })
}

/// The slow path of a statement on `h` while [`pending`]: when `h` is a remembered handle of an
/// older generation, runs the use callback for its database (no lock held) and marks it
/// current. `Err`: the statement must fail with this message (without `dagz:`).
#[cold]
#[inline(never)]
pub fn check(h: *mut c_void, stmt: Option<&[u8]>) -> Result<(), String> {
    if stmt.is_some_and(crate::core::txn::ends_transaction) {
        return Ok(()); // may release the lock the prepare would wait for; the next one prepares
    }
    crate::boundary::catch(|| check_inner(h as usize))
}

/// The statement at `q` for [`check`]: `len` bytes, or up to its NUL (`None`, or `usize::MAX`:
/// libmariadb's "NUL-terminated").
///
/// # Safety
/// `q` is NULL, NUL-terminated, or readable for `len` bytes.
pub unsafe fn stmt<'a>(q: *const c_char, len: Option<usize>) -> Option<&'a [u8]> {
    if q.is_null() {
        return None;
    }
    let n = match len {
        Some(l) if l != usize::MAX => l,
        // SAFETY: the function's contract (NUL-terminated).
        _ => unsafe { libc::strlen(q) },
    };
    // SAFETY: `n` bytes are readable at `q` (the function's contract, or up to its NUL).
    Some(unsafe { std::slice::from_raw_parts(q.cast::<u8>(), n) })
}

fn check_inner(h: usize) -> Result<(), String> {
    if guard::with(|g| g.bypass_depth() > 0 || g.in_callback()) {
        return Ok(()); // dagz's own or the user's bypassed statements, the callback's own
    }
    let (engine, db, gen) = {
        let g = REG.lock();
        let Some(r) = g.as_ref() else { return Ok(()) };
        match r.handles.get(&h) {
            Some(e) if e.gen != r.gen && r.check => (e.engine, e.db.clone(), r.gen),
            _ => return Ok(()),
        }
    };
    if let Some(cb) = callback() {
        call_back(cb, engine, &db)?;
    }
    with_reg(|r| {
        let cur = r.gen;
        if let Some(e) = r.handles.get_mut(&h) {
            if e.db == db && e.gen != gen {
                let (was, now) = (e.gen != cur, gen != cur);
                e.gen = gen;
                if was && !now {
                    r.stale -= 1;
                } else if now && !was {
                    r.stale += 1;
                }
            }
        }
    });
    Ok(())
}

fn call_back(cb: UseCallback, engine: Engine, db: &str) -> Result<(), String> {
    let cdb = CString::new(db).map_err(|_| "database name contains a NUL byte".to_owned())?;
    let mut buf = vec![0u8; CB_BUF];
    let rc = {
        let _g = guard::enter_callback();
        // SAFETY: `cb` was registered through dagz_set_use_callback with this signature; `cdb` is
        // NUL-terminated and `buf` writable for CB_BUF bytes. No lock is held here.
        unsafe {
            cb(
                abi::engine_code(engine),
                cdb.as_ptr(),
                buf.as_mut_ptr().cast(),
                CB_BUF - 1,
            )
        }
    };
    if rc == 0 {
        return Ok(());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(CB_BUF - 1);
    let msg = String::from_utf8_lossy(&buf[..end]).into_owned();
    let msg = msg.strip_prefix("dagz: ").unwrap_or(&msg).to_owned();
    Err(if msg.is_empty() {
        format!("preparing {db} for this test failed")
    } else {
        msg
    })
}
