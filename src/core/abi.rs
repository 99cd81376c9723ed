//! The numbers of the C ABI, defined once. `shim/dagz.h` and `shim/dagz/_shim.py` repeat them;
//! `scripts/abi_check.sh` (run by `make lint`) fails when either copy differs from these.

use super::policy::Engine;

/// Bumped on any incompatible change of the `dagz_*` functions; the Python package checks it.
pub const ABI_VERSION: i32 = 1;

/// Engine codes (`DAGZ_ENGINE_*`).
pub const ENGINE_POSTGRES: i32 = 1;
pub const ENGINE_MYSQL: i32 = 2;

/// Return codes of the decision callback (`DAGZ_CB_*`).
pub const CB_KEEP: i32 = 0;
pub const CB_REROUTE: i32 = 1;
pub const CB_DEFAULT: i32 = 2;
pub const CB_ERROR: i32 = -1;

/// Kinds of statement (`DAGZ_STMT_*`) of `dagz_mysql_rewrite_statement`.
pub const STMT_OTHER: i32 = 0;
pub const STMT_USE: i32 = 1;
pub const STMT_REFUSE: i32 = 2;
pub const STMT_CALL: i32 = 3;

/// Every constant above under its C name, for `scripts/abi_check.sh` (`DAGZ_` + name).
pub const ALL: [(&str, i32); 11] = [
    ("ABI_VERSION", ABI_VERSION),
    ("ENGINE_POSTGRES", ENGINE_POSTGRES),
    ("ENGINE_MYSQL", ENGINE_MYSQL),
    ("CB_KEEP", CB_KEEP),
    ("CB_REROUTE", CB_REROUTE),
    ("CB_DEFAULT", CB_DEFAULT),
    ("CB_ERROR", CB_ERROR),
    ("STMT_OTHER", STMT_OTHER),
    ("STMT_USE", STMT_USE),
    ("STMT_REFUSE", STMT_REFUSE),
    ("STMT_CALL", STMT_CALL),
];

pub fn engine_code(e: Engine) -> i32 {
    match e {
        Engine::Postgres => ENGINE_POSTGRES,
        Engine::Mysql => ENGINE_MYSQL,
    }
}

pub fn engine_from_code(c: i32) -> Option<Engine> {
    match c {
        ENGINE_POSTGRES => Some(Engine::Postgres),
        ENGINE_MYSQL => Some(Engine::Mysql),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_codes_round_trip() {
        for e in [Engine::Postgres, Engine::Mysql] {
            assert_eq!(engine_from_code(engine_code(e)), Some(e));
        }
        assert_eq!(engine_from_code(0), None);
        assert_eq!(engine_from_code(3), None);
    }
}
