//! The connection settings of MySQL client handles, for a decision callback that wants them
//! (`dagz_set_decision_callback2`): those of `mysql_real_connect`, remembered per handle for a
//! later `mysql_select_db` or `USE`, with `mysql_change_user`'s user and password.

use crate::boundary;
use crate::cstr::bytes;
use crate::decide;
use std::ffi::{c_char, c_uint, c_void};

type Mysql = c_void;

/// The connection settings of each handle's last `mysql_real_connect` / `mysql_change_user`,
/// for a decision callback that wants them (kept only while one is registered; in memory only).
/// Handle addresses are reused by later handles, so the map stays as small as the live handles;
/// it is emptied when it grows past [`SETTINGS_MAX`] (a later call on such a handle then gives
/// the callback no settings).
static HANDLE_SETTINGS: parking_lot::Mutex<Option<std::collections::HashMap<usize, Vec<u8>>>> =
    parking_lot::Mutex::new(None);
const SETTINGS_MAX: usize = 4096;

/// The settings of a connect (`passwd` as the client API names it) as the callback gets them.
///
/// # Safety
/// Every pointer is NULL or NUL-terminated (the client API's contract).
unsafe fn connect_settings(
    host: *const c_char,
    user: *const c_char,
    passwd: *const c_char,
    port: c_uint,
    unix_socket: *const c_char,
) -> Vec<u8> {
    let mut s = crate::conninfo::Settings::default();
    // SAFETY: the function's contract.
    let strs = unsafe { [bytes(host), bytes(user), bytes(passwd), bytes(unix_socket)] };
    for (key, v) in ["host", "user", "passwd", "unix_socket"].iter().zip(strs) {
        if let Some(v) = v {
            s.set(key.as_bytes(), v);
        }
    }
    if port != 0 {
        s.set(b"port", port.to_string().as_bytes());
    }
    s.block()
}

/// Remembers `block` as the settings of `mysql` (when the callback wants settings).
fn remember_settings(mysql: *mut Mysql, block: impl FnOnce() -> Vec<u8>) {
    if mysql.is_null() || !decide::wants_settings() {
        return;
    }
    let block = block();
    let mut map = HANDLE_SETTINGS.lock();
    let map = map.get_or_insert_with(Default::default);
    if map.len() >= SETTINGS_MAX {
        map.clear();
    }
    map.insert(mysql as usize, block);
}

/// The remembered settings of the handle `mysql` (empty when none).
pub fn handle(mysql: *mut Mysql) -> Vec<u8> {
    HANDLE_SETTINGS
        .lock()
        .as_ref()
        .and_then(|m| m.get(&(mysql as usize)).cloned())
        .unwrap_or_default()
}

/// The remembered settings of `mysql` with `user` and `passwd` replaced (`mysql_change_user`).
///
/// # Safety
/// `user` and `passwd` are NULL or NUL-terminated.
pub unsafe fn changed_user_settings(
    mysql: *mut Mysql,
    user: *const c_char,
    passwd: *const c_char,
) -> Vec<u8> {
    let old = handle(mysql);
    let mut s = crate::conninfo::Settings::default();
    let parts: Vec<&[u8]> = old.split(|&b| b == 0).collect();
    for kv in parts.chunks(2).filter(|c| c.len() == 2) {
        s.set(kv[0], kv[1]);
    }
    // SAFETY: the function's contract.
    let (u, p) = unsafe { (bytes(user), bytes(passwd)) };
    s.set(b"user", u.unwrap_or_default());
    s.set(b"passwd", p.unwrap_or_default());
    s.block()
}

/// The settings of a `mysql_real_connect(_start)` as a closure for the decision, remembered for
/// the handle first (when the callback wants settings; a failure here only loses them).
///
/// # Safety
/// Every pointer is NULL or NUL-terminated and outlives the returned closure's use.
pub unsafe fn on_connect(
    mysql: *mut Mysql,
    host: *const c_char,
    user: *const c_char,
    passwd: *const c_char,
    port: c_uint,
    unix_socket: *const c_char,
) -> impl Fn() -> Vec<u8> {
    // SAFETY: the function's contract.
    let settings = move || unsafe { connect_settings(host, user, passwd, port, unix_socket) };
    let _ = boundary::catch(|| {
        remember_settings(mysql, settings);
        Ok(())
    });
    settings
}
