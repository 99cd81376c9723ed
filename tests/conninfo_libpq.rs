//! `dagz::conninfo` against the real parser: the system libpq's `PQconninfoParse`.
//!
//! (a) for generated conninfos and URIs, every option our parser reports (the dbname in
//!     particular) equals what libpq reports, and we reject exactly what libpq rejects (except
//!     unknown keywords, which we deliberately leave to libpq);
//! (b) after a rewrite, libpq reads the new dbname and every other option unchanged.

use dagz::conninfo::{self, PgEnv, RewriteError};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};

#[repr(C)]
struct PQconninfoOption {
    keyword: *mut c_char,
    envvar: *mut c_char,
    compiled: *mut c_char,
    val: *mut c_char,
    label: *mut c_char,
    dispchar: *mut c_char,
    dispsize: c_int,
}

#[link(name = "pq")]
extern "C" {
    fn PQconninfoParse(conninfo: *const c_char, errmsg: *mut *mut c_char) -> *mut PQconninfoOption;
    fn PQconninfoFree(options: *mut PQconninfoOption);
    fn PQfreemem(ptr: *mut c_void);
    fn PQlibVersion() -> c_int;
}

/// libpq's reading of `s`: keyword → value for every option it set, or its error message.
fn libpq_parse(s: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let c = CString::new(s).expect("no NUL in generated input");
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: `c` is a valid C string; `err` receives NULL or a malloc'd message.
    let opts = unsafe { PQconninfoParse(c.as_ptr(), &mut err) };
    if opts.is_null() {
        let msg = if err.is_null() {
            "out of memory".to_owned()
        } else {
            // SAFETY: libpq returned a NUL-terminated message that we free right after copying.
            let m = unsafe { CStr::from_ptr(err) }
                .to_string_lossy()
                .into_owned();
            // SAFETY: `err` was allocated by libpq and is freed once, here.
            unsafe { PQfreemem(err.cast()) };
            m
        };
        return Err(msg);
    }
    let mut m = BTreeMap::new();
    let mut p = opts;
    // SAFETY: the array is terminated by an entry whose keyword is NULL; strings are NUL-terminated.
    unsafe {
        while !(*p).keyword.is_null() {
            if !(*p).val.is_null() {
                let k = CStr::from_ptr((*p).keyword).to_string_lossy().into_owned();
                m.insert(k, CStr::from_ptr((*p).val).to_bytes().to_vec());
            }
            p = p.add(1);
        }
        PQconninfoFree(opts);
    }
    Ok(m)
}

struct Env;

impl PgEnv for Env {
    fn var(&self, name: &str) -> Option<String> {
        (name == "PGUSER").then(|| "fallbackuser".to_owned())
    }
    fn os_user(&self) -> Option<String> {
        Some("osuser".to_owned())
    }
    fn read_file(&self, _: &str) -> Option<String> {
        None
    }
}

fn jw03(x: &str) -> Result<Option<String>, String> {
    Ok((!x.ends_with("_jw03")).then(|| format!("{x}_jw03")))
}

fn without_db(mut m: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    m.remove("dbname");
    m
}

/// (a) and (b) for one input.
fn check(s: &[u8]) -> Result<(), TestCaseError> {
    let theirs = libpq_parse(s);
    let ours = conninfo::parse_options(s);
    let theirs = match (theirs, ours) {
        (Ok(t), Ok(o)) => {
            prop_assert_eq!(&o, &t, "input {:?}", String::from_utf8_lossy(s));
            t
        }
        (Err(e), Ok(_))
            if e.contains("invalid connection option")
                || e.contains("invalid URI query parameter") =>
        {
            // Unknown keywords: libpq's list differs between versions; libpq itself refuses them.
            return Ok(());
        }
        (Err(_), Err(_)) => return Ok(()),
        (t, o) => {
            return Err(TestCaseError::fail(format!(
                "input {:?}: libpq {t:?}, dagz {o:?}",
                String::from_utf8_lossy(s)
            )))
        }
    };
    let effective = match (theirs.get("dbname"), theirs.get("user")) {
        (Some(d), _) if !d.is_empty() => d.clone(),
        (_, Some(u)) if !u.is_empty() => u.clone(),
        (_, Some(_)) => b"osuser".to_vec(),
        (_, None) => b"fallbackuser".to_vec(),
    };
    let res = conninfo::rewrite_conninfo(s, &Env, &mut jw03);
    let Ok(name) = String::from_utf8(effective) else {
        prop_assert!(matches!(res, Err(RewriteError::Syntax(_))));
        return Ok(());
    };
    let out = res.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    if name.ends_with("_jw03") {
        prop_assert_eq!(out, None);
        return Ok(());
    }
    let out = out.ok_or_else(|| TestCaseError::fail("not rewritten"))?;
    let after = libpq_parse(&out)
        .map_err(|e| TestCaseError::fail(format!("libpq rejects the rewrite: {e}")))?;
    let new = format!("{name}_jw03");
    prop_assert_eq!(after.get("dbname").map(Vec::as_slice), Some(new.as_bytes()));
    prop_assert_eq!(without_db(after), without_db(theirs));
    prop_assert_eq!(conninfo::rewrite_conninfo(&out, &Env, &mut jw03), Ok(None));
    Ok(())
}

// ------------------------------------------------------------------------------- generators

const KEYS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "options",
    "sslmode",
    "application_name",
    "connect_timeout",
];

fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(b"abcxyz019_-.".to_vec()),
            2 => prop::sample::select(b" \t\n'\\=&?/@:%,#[]+".to_vec()),
            1 => 1u8..=255,
        ],
        0..10,
    )
}

fn conn_quote(v: &[u8]) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &c in v {
        if c == b'\\' || c == b'\'' {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'\'');
    out
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A well-formed conninfo: keyword, blanks, '=', blanks, quoted or escaped value, separators.
fn conninfo() -> impl Strategy<Value = Vec<u8>> {
    let item = (
        prop::sample::select(KEYS),
        value_bytes(),
        any::<bool>(),
        0usize..2,
        0usize..2,
        prop::collection::vec(prop::sample::select(b" \t\n".to_vec()), 0..3),
    );
    prop::collection::vec(item, 0..6).prop_map(|items| {
        let mut s = Vec::new();
        let count = items.len();
        for (k, (key, val, quoted, pre, post, sep)) in items.into_iter().enumerate() {
            s.extend_from_slice(key.as_bytes());
            s.extend(std::iter::repeat_n(b' ', pre));
            s.push(b'=');
            s.extend(std::iter::repeat_n(b' ', post));
            let quoted = quoted || val.is_empty();
            if quoted {
                s.extend(conn_quote(&val));
            } else {
                for (i, &c) in val.iter().enumerate() {
                    if is_space(c) || c == b'\\' || (i == 0 && c == b'\'') {
                        s.push(b'\\');
                    }
                    s.push(c);
                }
            }
            if k + 1 < count || !sep.is_empty() {
                s.extend_from_slice(&sep);
                if !quoted && sep.is_empty() {
                    s.push(b' ');
                }
            }
        }
        s
    })
}

fn pct(v: &[u8], all: bool) -> Vec<u8> {
    v.iter()
        .flat_map(|&c| {
            if !all && (c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')) {
                vec![c]
            } else {
                format!("%{c:02X}").into_bytes()
            }
        })
        .collect()
}

/// A well-formed URI: userinfo, several hosts (names, IPv6, empty), ports, path, query.
fn uri() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        prop::option::of((value_bytes(), prop::option::of(value_bytes()))),
        prop::collection::vec(
            (
                prop::sample::select(&["", "localhost", "[::1]", "db.example", "h%41"][..]),
                prop::option::of(1u16..9999),
            ),
            1..4,
        ),
        prop::option::of(value_bytes()),
        prop::collection::vec((prop::sample::select(KEYS), value_bytes()), 0..4),
        any::<bool>(),
    )
        .prop_map(|(short, user, hosts, path, query, all)| {
            let mut s = if short {
                b"postgres://".to_vec()
            } else {
                b"postgresql://".to_vec()
            };
            if let Some((u, pw)) = user {
                s.extend(pct(&u, all));
                if let Some(pw) = pw {
                    s.push(b':');
                    s.extend(pct(&pw, all));
                }
                s.push(b'@');
            }
            for (k, (h, p)) in hosts.into_iter().enumerate() {
                if k > 0 {
                    s.push(b',');
                }
                s.extend_from_slice(h.as_bytes());
                if let Some(p) = p {
                    s.extend(format!(":{p}").into_bytes());
                }
            }
            if let Some(path) = path {
                s.push(b'/');
                s.extend(pct(&path, all));
            }
            for (k, (key, val)) in query.into_iter().enumerate() {
                s.push(if k == 0 { b'?' } else { b'&' });
                s.extend_from_slice(key.as_bytes());
                s.push(b'=');
                s.extend(pct(&val, all));
            }
            s
        })
}

/// Arbitrary strings made of the characters and words that matter to the parsers.
fn fuzzy() -> impl Strategy<Value = Vec<u8>> {
    let tok = prop::sample::select(
        &[
            "dbname", "user", "password", "host", "port", "=", "=", " ", " ", "'", "\\", "a", "b",
            "%", "%41", "%6E", "%00", "%4", "@", ":", "/", "?", "&", ",", "[", "]", "::1", "\t",
            "ssl=true", "x y",
        ][..],
    );
    (
        prop::sample::select(&["", "", "postgresql://", "postgres://", " postgresql://"][..]),
        prop::collection::vec(tok, 0..14),
    )
        .prop_map(|(prefix, toks)| {
            let mut s = prefix.as_bytes().to_vec();
            for t in toks {
                s.extend_from_slice(t.as_bytes());
            }
            s
        })
}

#[test]
fn libpq_version_is_known() {
    // SAFETY: no arguments, returns an int.
    let v = unsafe { PQlibVersion() };
    assert!(v >= 90000, "libpq {v}");
}

#[test]
fn libpq_agrees_on_fixed_cases() {
    for s in [
        &b""[..],
        b"dbname=app",
        b"dbname= user=x",
        b"dbname='a'user=b",
        br"password=ab\ dbname=q",
        br"password=ab\",
        b"dbname=",
        b"user='' host=h",
        b"requiressl=1 dbname=x",
        b"postgresql://u:p%40w@h1:5432,[::1]:5433/db?sslmode=disable&application_name=a%20b",
        b"postgresql://h/db?dbname=other",
        b"postgresql://h?dbname=",
        b"postgres://",
        b"postgresql://h/a/b?ssl=true",
        b"postgresql://h?user=a@b/db",
        b"postgresql://u@",
        b"postgresql://,/",
        b"postgresql://h%zz/db",
        b"dbname='x",
        b"x",
    ] {
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&Just(s.to_vec()), |s| check(&s))
            .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(s)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn conninfo_matches_libpq(s in conninfo()) {
        check(&s)?;
    }

    #[test]
    fn uri_matches_libpq(s in uri()) {
        check(&s)?;
    }

    #[test]
    fn fuzzy_input_matches_libpq(s in fuzzy()) {
        check(&s)?;
    }
}
