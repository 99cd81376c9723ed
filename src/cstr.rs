//! Reading the C strings handed to the hooks and exports.

use std::ffi::{c_char, CStr};

/// The bytes of a NULL-or-NUL-terminated C string argument.
///
/// Callers pass arguments of C APIs (libpq, the MySQL client, `shim/dagz.h`) whose contract is
/// exactly that: NULL or a NUL-terminated string alive for the duration of the call.
pub(crate) fn bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: the API contracts above; NULL is checked here.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes())
}
