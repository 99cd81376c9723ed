//! `dagz[pid]: …` lines on stderr, written with one plain `write(2)` (no std printing: it may be
//! called from inside a host's connect, on any thread, and must never panic or allocate a lock).
//! Nothing in here ever sees a password: callers pass database names and redacted strings only.

use once_cell::sync::Lazy;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off = 0,
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    /// Parses `DAGZ_LOG`; unknown values fall back to `warn` (and say so once, see [`level`]).
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "0" | "none" => Some(Level::Off),
            "error" => Some(Level::Error),
            "warn" | "warning" | "" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" | "trace" => Some(Level::Debug),
            _ => None,
        }
    }
}

static LEVEL: Lazy<Level> = Lazy::new(|| match std::env::var("DAGZ_LOG") {
    Err(_) => Level::Warn,
    Ok(v) => match Level::parse(&v) {
        Some(l) => l,
        None => {
            write_line(&format!(
                "DAGZ_LOG={v:?} is not one of off|error|warn|info|debug; using warn"
            ));
            Level::Warn
        }
    },
});

/// The configured level, read from `DAGZ_LOG` once.
pub fn level() -> Level {
    *LEVEL
}

pub fn enabled(l: Level) -> bool {
    l != Level::Off && l <= level()
}

/// Writes `dagz[pid]: msg\n` to fd 2, ignoring errors.
pub fn write_line(msg: &str) {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let line = format!("dagz[{pid}]: {msg}\n");
    let bytes = line.as_bytes();
    let mut off = 0;
    while off < bytes.len() {
        let rest = &bytes[off..];
        // SAFETY: `rest` is a live, initialised buffer of `rest.len()` bytes; fd 2 may be closed,
        // in which case write returns -1 and we stop.
        let n = unsafe { libc::write(2, rest.as_ptr().cast(), rest.len()) };
        if n <= 0 {
            break;
        }
        off += n as usize;
    }
}

/// `dlog!(Level::Info, "…", args)`: formats only when the level is enabled.
#[macro_export]
macro_rules! dlog {
    ($lvl:expr, $($arg:tt)*) => {
        if $crate::log::enabled($lvl) {
            $crate::log::write_line(&format!($($arg)*));
        }
    };
}
