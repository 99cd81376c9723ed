//! Reading the C strings handed to the hooks and exports.

use std::ffi::{c_char, CStr};

/// The bytes of a NULL-or-NUL-terminated C string argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays alive and unchanged for `'a` —
/// the contract of every string argument of the C APIs hooked or exported here (libpq, the MySQL
/// client, `shim/dagz.h`), for the duration of the call.
pub(crate) unsafe fn bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: the contract above; NULL is checked here.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes())
}
