//! Finding the *real* function behind a hooked call.
//!
//! A Python process may hold several copies of libpq/libmariadb (psycopg2-binary's, psycopg-binary's,
//! the system's); a connection made by one copy and used by another crashes. The only strategy that
//! was measured to survive every load order is: take the real function from the copy the caller
//! *already uses* — read where the caller's already-bound GOT slots of sibling imports (`PQfinish`,
//! `mysql_close`, …) point. When none is bound yet, do what the dynamic linker will do when it binds
//! them: global scope first (`RTLD_NEXT` from this library), then the caller's own dependencies.
//! When the bound slots disagree, refuse rather than guess.
//!
//! Results are cached per call site (return address) and per library copy, so the ELF walking and
//! `dladdr` happen once per call site, never on the fast path.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicPtr, Ordering};

/// One loaded object (a library copy or the caller), identified by its load base.
#[derive(Clone, Debug)]
pub struct Object {
    pub base: usize,
    pub path: String,
    lm: *const LinkMap,
}

/// A library copy found for a caller, with a handle to look its symbols up.
pub struct Lib {
    pub obj: Object,
    handle: *mut c_void,
}

#[repr(C)]
struct LinkMap {
    l_addr: usize,
    l_name: *const c_char,
    l_ld: *const Dyn,
    l_next: *const LinkMap,
    l_prev: *const LinkMap,
}

#[repr(C)]
struct Dyn {
    d_tag: i64,
    d_val: u64,
}

#[repr(C)]
struct Rela {
    r_offset: u64,
    r_info: u64,
    r_addend: i64,
}

#[repr(C)]
struct Sym {
    st_name: u32,
    st_info: u8,
    st_other: u8,
    st_shndx: u16,
    st_value: u64,
    st_size: u64,
}

const RTLD_DL_LINKMAP: c_int = 2;
const DT_NULL: i64 = 0;
const DT_PLTRELSZ: i64 = 2;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_RELA: i64 = 7;
const DT_RELASZ: i64 = 8;
const DT_STRSZ: i64 = 10;
const DT_PLTREL: i64 = 20;
const DT_JMPREL: i64 = 23;
const R_X86_64_GLOB_DAT: u64 = 6;
const R_X86_64_JUMP_SLOT: u64 = 7;
/// Upper bound on dynamic entries / relocations walked, against corrupt tables.
const MAX_ENTRIES: usize = 1 << 22;

extern "C" {
    fn dladdr1(
        addr: *const c_void,
        info: *mut libc::Dl_info,
        extra: *mut *mut c_void,
        flags: c_int,
    ) -> c_int;
}

/// The object that contains `addr`, if any.
pub fn object_of(addr: usize) -> Option<Object> {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    let mut lm: *mut c_void = std::ptr::null_mut();
    // SAFETY: `info` and `lm` are valid out-pointers; dladdr1 only reads the loader's own tables and
    // accepts any address (it returns 0 for unmapped ones).
    let ok = unsafe {
        dladdr1(
            addr as *const c_void,
            info.as_mut_ptr(),
            &mut lm,
            RTLD_DL_LINKMAP,
        )
    };
    if ok == 0 || lm.is_null() {
        return None;
    }
    // SAFETY: dladdr1 returned non-zero, so it filled `info`.
    let info = unsafe { info.assume_init() };
    let path = if info.dli_fname.is_null() {
        String::new()
    } else {
        // SAFETY: dli_fname is a NUL-terminated string owned by the loader for the object's lifetime.
        unsafe { CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned()
    };
    Some(Object {
        base: info.dli_fbase as usize,
        path,
        lm: lm as *const LinkMap,
    })
}

/// This library's own object (to recognise and reject our own hooks as "real" functions).
fn self_base() -> usize {
    static BASE: once_cell::sync::OnceCell<usize> = once_cell::sync::OnceCell::new();
    *BASE.get_or_init(|| {
        object_of(self_base as *const () as usize)
            .map(|o| o.base)
            .unwrap_or(0)
    })
}

/// The dynamic-section fields we need, as absolute addresses.
struct DynInfo {
    symtab: usize,
    strtab: usize,
    strsz: usize,
    tables: [(usize, usize); 2], // (JMPREL, PLTRELSZ), (RELA, RELASZ)
}

fn dyn_info(obj: &Object) -> Option<DynInfo> {
    // SAFETY: `obj.lm` came from dladdr1 for a loaded object; link maps live as long as the object,
    // and Python never unloads extension modules. We only read the public head of `struct link_map`.
    let (l_addr, mut d) = unsafe { ((*obj.lm).l_addr, (*obj.lm).l_ld) };
    if d.is_null() {
        return None;
    }
    // glibc relocates the pointer-valued entries of a writable .dynamic in place; a read-only one
    // (vdso) keeps file offsets. An unrelocated value is smaller than the load base.
    let abs = |v: u64| -> usize {
        let v = v as usize;
        if v < l_addr {
            v.wrapping_add(l_addr)
        } else {
            v
        }
    };
    let mut info = DynInfo {
        symtab: 0,
        strtab: 0,
        strsz: 0,
        tables: [(0, 0); 2],
    };
    let mut pltrel_is_rela = true;
    for _ in 0..MAX_ENTRIES {
        // SAFETY: `d` walks the object's dynamic array, which the ELF format terminates with DT_NULL;
        // the walk is bounded by MAX_ENTRIES as well.
        let e = unsafe { &*d };
        match e.d_tag {
            DT_NULL => break,
            DT_SYMTAB => info.symtab = abs(e.d_val),
            DT_STRTAB => info.strtab = abs(e.d_val),
            DT_STRSZ => info.strsz = e.d_val as usize,
            DT_JMPREL => info.tables[0].0 = abs(e.d_val),
            DT_PLTRELSZ => info.tables[0].1 = e.d_val as usize,
            DT_RELA => info.tables[1].0 = abs(e.d_val),
            DT_RELASZ => info.tables[1].1 = e.d_val as usize,
            DT_PLTREL => pltrel_is_rela = e.d_val == DT_RELA as u64,
            _ => {}
        }
        // SAFETY: still inside the DT_NULL-terminated array (we stop at DT_NULL above).
        d = unsafe { d.add(1) };
    }
    if !pltrel_is_rela {
        info.tables[0] = (0, 0);
    }
    (info.symtab != 0 && info.strtab != 0).then_some(info)
}

/// Where the caller's GOT slots for `siblings` point: one entry per bound slot, `(name, object)`;
/// a sibling the caller itself defines yields the caller.
fn bound_siblings(caller: &Object, siblings: &[&str]) -> Vec<(String, Object)> {
    let mut out = Vec::new();
    let Some(di) = dyn_info(caller) else {
        return out;
    };
    // SAFETY: lm is valid (see dyn_info).
    let l_addr = unsafe { (*caller.lm).l_addr };
    for &(table, size) in &di.tables {
        if table == 0 || size == 0 {
            continue;
        }
        let n = (size / std::mem::size_of::<Rela>()).min(MAX_ENTRIES);
        for i in 0..n {
            // SAFETY: `table` is the object's relocation table of `size` bytes (from its dynamic
            // section); i < size / sizeof(Rela).
            let r = unsafe { &*(table as *const Rela).add(i) };
            let ty = r.r_info & 0xffff_ffff;
            if ty != R_X86_64_JUMP_SLOT && ty != R_X86_64_GLOB_DAT {
                continue;
            }
            let symidx = (r.r_info >> 32) as usize;
            // SAFETY: a JUMP_SLOT/GLOB_DAT relocation's symbol index is an index into DT_SYMTAB.
            let sym = unsafe { &*(di.symtab as *const Sym).add(symidx) };
            if sym.st_name as usize >= di.strsz {
                continue;
            }
            // SAFETY: st_name < DT_STRSZ, so this points into the NUL-terminated string table.
            let name =
                unsafe { CStr::from_ptr((di.strtab + sym.st_name as usize) as *const c_char) };
            let Ok(name) = name.to_str() else { continue };
            if !siblings.contains(&name) {
                continue;
            }
            if sym.st_shndx != 0 {
                out.push((name.to_owned(), caller.clone()));
                continue;
            }
            // SAFETY: r_offset is the slot's offset in the caller's image, which is mapped; GOT slots
            // are pointer-sized and aligned.
            let target = unsafe { *((l_addr.wrapping_add(r.r_offset as usize)) as *const usize) };
            match object_of(target) {
                // A slot still pointing into the caller is an unbound lazy PLT slot.
                Some(o) if o.base != caller.base => out.push((name.to_owned(), o)),
                _ => {}
            }
        }
    }
    out
}

fn dlopen_noload(obj: &Object) -> *mut c_void {
    // SAFETY: the main program has an empty l_name; for it, dlopen(NULL) is its handle.
    let name = unsafe { (*obj.lm).l_name };
    // SAFETY: a non-NULL l_name is a NUL-terminated string owned by the loader (first byte read).
    let name = if name.is_null() || unsafe { *name } == 0 {
        std::ptr::null()
    } else {
        name
    };
    // SAFETY: `name` is NULL or a NUL-terminated path owned by the loader; RTLD_NOLOAD never loads
    // anything new, it only returns (and references) an already loaded object.
    unsafe { libc::dlopen(name, libc::RTLD_LAZY | libc::RTLD_NOLOAD) }
}

/// `dlsym` that ignores our own hooks.
fn dlsym_not_ours(handle: *mut c_void, name: &CStr) -> Option<usize> {
    // SAFETY: `handle` is a handle from dlopen or RTLD_NEXT; `name` is NUL-terminated.
    let p = unsafe { libc::dlsym(handle, name.as_ptr()) } as usize;
    if p == 0 {
        return None;
    }
    match object_of(p) {
        Some(o) if o.base == self_base() => None,
        _ => Some(p),
    }
}

/// The library copy the caller at `caller_addr` uses, judged by the sibling imports; `probe` is one
/// of the hooked functions, used when nothing is bound yet.
pub fn find_lib(caller_addr: usize, siblings: &[&str], probe: &CStr) -> Result<Lib, String> {
    let caller = object_of(caller_addr).ok_or_else(|| {
        format!(
            "cannot tell which object called {}",
            probe.to_string_lossy()
        )
    })?;
    let bound = bound_siblings(&caller, siblings);
    let mut copies: Vec<&(String, Object)> = Vec::new();
    for b in &bound {
        // An import bound to dagz itself (a hooked sibling: PQexec, PQfinish, mysql_close) says
        // nothing about the copy.
        if b.1.base == self_base() {
            continue;
        }
        if !copies.iter().any(|c| c.1.base == b.1.base) {
            copies.push(b);
        }
    }
    let obj = match copies.as_slice() {
        [one] => one.1.clone(),
        [] => {
            // Nothing bound yet: the dynamic linker will search the global scope first, then the
            // caller's own dependencies.
            let p = dlsym_not_ours(libc::RTLD_NEXT, probe)
                .or_else(|| {
                    let h = dlopen_noload(&caller);
                    if h.is_null() {
                        None
                    } else {
                        dlsym_not_ours(h, probe)
                    }
                })
                .ok_or_else(|| {
                    format!(
                        "no real {} visible to {}",
                        probe.to_string_lossy(),
                        display_path(&caller.path)
                    )
                })?;
            object_of(p)
                .ok_or_else(|| format!("real {} is in no loaded object", probe.to_string_lossy()))?
        }
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|(n, o)| format!("{n} -> {}", display_path(&o.path)))
                .collect();
            return Err(format!(
                "{} uses several client library copies at once ({}); refusing to guess",
                display_path(&caller.path),
                list.join(", ")
            ));
        }
    };
    if obj.base == self_base() {
        return Err("the only candidate real function is dagz's own hook".into());
    }
    let handle = dlopen_noload(&obj);
    if handle.is_null() {
        return Err(format!(
            "cannot open loaded library {}",
            display_path(&obj.path)
        ));
    }
    Ok(Lib { obj, handle })
}

fn display_path(p: &str) -> &str {
    if p.is_empty() {
        "the main program"
    } else {
        p
    }
}

impl Lib {
    /// The address of `name` defined in this very copy (not found through its dependencies).
    pub fn sym(&self, name: &str) -> Result<usize, String> {
        let c = CString::new(name).map_err(|_| format!("bad symbol name {name:?}"))?;
        let p = dlsym_not_ours(self.handle, &c)
            .ok_or_else(|| format!("{name} not found in {}", display_path(&self.obj.path)))?;
        match object_of(p) {
            Some(o) if o.base == self.obj.base => Ok(p),
            _ => Err(format!(
                "{name} of {} resolves outside it",
                display_path(&self.obj.path)
            )),
        }
    }
}

const FAST_SLOTS: usize = 64;

/// Per-family cache: call site → table of real functions (a lock-free direct-mapped first level,
/// then a locked map), and library copy → table. Entries are never freed: they are bounded by the
/// number of call sites and copies, and a hook may still be reading an evicted one.
pub struct Family<T: 'static> {
    siblings: &'static [&'static str],
    probe: &'static CStr,
    build: fn(&Lib) -> Result<T, String>,
    fast: [AtomicPtr<(usize, &'static T)>; FAST_SLOTS],
    sites: Mutex<Option<HashMap<usize, &'static T>>>,
    copies: Mutex<Option<HashMap<usize, &'static T>>>,
}

fn fast_slot(site: usize) -> usize {
    ((site >> 4) ^ (site >> 12)) % FAST_SLOTS
}

impl<T: Sync + 'static> Family<T> {
    pub const fn new(
        siblings: &'static [&'static str],
        probe: &'static CStr,
        build: fn(&Lib) -> Result<T, String>,
    ) -> Self {
        Family {
            siblings,
            probe,
            build,
            fast: [const { AtomicPtr::new(std::ptr::null_mut()) }; FAST_SLOTS],
            sites: Mutex::new(None),
            copies: Mutex::new(None),
        }
    }

    /// The table already resolved for `caller`, from the lock-free first level only: two loads.
    #[inline(always)]
    pub fn cached(&self, caller: usize) -> Option<&'static T> {
        let p = self.fast[fast_slot(caller)].load(Ordering::Acquire);
        // SAFETY: non-null entries are leaked `Box<(usize, &'static T)>` published with Release
        // below and never freed.
        let (site, table) = unsafe { p.as_ref() }?;
        (*site == caller).then_some(*table)
    }

    fn remember(&self, caller: usize, table: &'static T) {
        let entry = Box::leak(Box::new((caller, table)));
        self.fast[fast_slot(caller)].store(entry, Ordering::Release);
    }

    /// The real-function table for the call site `caller`. Never holds a lock while calling out,
    /// except the loader's own.
    pub fn for_caller(&self, caller: usize) -> Result<&'static T, String> {
        if let Some(t) = self.cached(caller) {
            return Ok(t);
        }
        let known = self
            .sites
            .lock()
            .as_ref()
            .and_then(|m| m.get(&caller).copied());
        if let Some(t) = known {
            self.remember(caller, t);
            return Ok(t);
        }
        let lib = find_lib(caller, self.siblings, self.probe)?;
        let existing = self
            .copies
            .lock()
            .as_ref()
            .and_then(|m| m.get(&lib.obj.base).copied());
        let table: &'static T = match existing {
            Some(t) => t,
            None => {
                let t: &'static T = Box::leak(Box::new((self.build)(&lib)?));
                self.copies
                    .lock()
                    .get_or_insert_with(HashMap::new)
                    .entry(lib.obj.base)
                    .or_insert(t)
            }
        };
        crate::dlog!(
            crate::log::Level::Debug,
            "call site {caller:#x} uses {}",
            display_path(&lib.obj.path)
        );
        self.sites
            .lock()
            .get_or_insert_with(HashMap::new)
            .insert(caller, table);
        self.remember(caller, table);
        Ok(table)
    }
}
