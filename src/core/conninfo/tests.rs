//! Tests of the conninfo parser and rewriter.

use super::*;
use proptest::prelude::*;
use std::cell::Cell;
use std::collections::HashMap;

#[derive(Default, Clone)]
struct Env {
    vars: HashMap<String, String>,
    user: Option<String>,
    files: HashMap<String, String>,
}

impl Env {
    fn new() -> Env {
        Env {
            user: Some("osuser".into()),
            ..Env::default()
        }
    }
    fn var(mut self, k: &str, v: &str) -> Env {
        self.vars.insert(k.into(), v.into());
        self
    }
    fn file(mut self, path: &str, text: &str) -> Env {
        self.files.insert(path.into(), text.into());
        self
    }
    fn no_user(mut self) -> Env {
        self.user = None;
        self
    }
}

impl PgEnv for Env {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn os_user(&self) -> Option<String> {
        self.user.clone()
    }
    fn read_file(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }
}

fn jw03(x: &str) -> Result<Option<String>, String> {
    Ok((!x.ends_with("_jw03")).then(|| format!("{x}_jw03")))
}

fn rw_env(s: &str, env: &Env) -> Result<Option<String>, RewriteError> {
    rewrite_conninfo(s.as_bytes(), env, &mut jw03).map(|o| o.map(|v| String::from_utf8(v).unwrap()))
}

fn rw(s: &str) -> Option<String> {
    rw_env(s, &Env::new()).unwrap()
}

fn opts(s: &[u8]) -> BTreeMap<String, Vec<u8>> {
    parse_options(s).unwrap()
}

fn syntax_err(s: &str) -> String {
    match rewrite_conninfo(s.as_bytes(), &Env::new(), &mut jw03) {
        Err(RewriteError::Syntax(m)) => m,
        other => panic!("{s:?}: expected a syntax error, got {other:?}"),
    }
}

#[test]
fn conninfo_plain() {
    assert_eq!(
        rw("host=h dbname=myapp user=u").unwrap(),
        "host=h dbname=myapp_jw03 user=u"
    );
    assert_eq!(rw("dbname=myapp").unwrap(), "dbname=myapp_jw03");
    assert_eq!(
        rw("  dbname =  myapp\t port=1 ").unwrap(),
        "  dbname =  myapp_jw03\t port=1 "
    );
    // Already rerouted: unchanged.
    assert_eq!(rw("dbname=myapp_jw03"), None);
    // The last setting wins and is the one rewritten.
    assert_eq!(rw("dbname=a dbname=b").unwrap(), "dbname=a dbname=b_jw03");
    // Keywords are case-sensitive: DBNAME is not dbname (libpq rejects it later).
    assert_eq!(rw("DBNAME=x dbname=y").unwrap(), "DBNAME=x dbname=y_jw03");
}

#[test]
fn conninfo_quoting_and_escapes() {
    assert_eq!(
        rw("dbname='my app' port=1").unwrap(),
        "dbname='my app_jw03' port=1"
    );
    assert_eq!(rw("dbname='x'").unwrap(), "dbname='x_jw03'");
    assert_eq!(
        rw(r"dbname='it\'s' host=h").unwrap(),
        r"dbname='it\'s_jw03' host=h"
    );
    assert_eq!(rw(r"dbname='a\\b'").unwrap(), r"dbname='a\\b_jw03'");
    // Unquoted with escapes: the new value needs quoting.
    assert_eq!(
        rw(r"dbname=my\ app host=h").unwrap(),
        "dbname='my app_jw03' host=h"
    );
    assert_eq!(rw(r"dbname=\a\b").unwrap(), "dbname=ab_jw03");
    // A quote inside an unquoted value is literal.
    assert_eq!(rw("dbname=a'b").unwrap(), r"dbname='a\'b_jw03'");
    // Blanks after '=' are skipped, so the value is "user=x".
    assert_eq!(rw("dbname= user=x").unwrap(), "dbname= user=x_jw03");
    assert_eq!(opts(b"dbname= user=x")["dbname"], b"user=x");
    // A quoted value may be followed directly by the next keyword.
    assert_eq!(rw("dbname='a'user=b").unwrap(), "dbname='a_jw03'user=b");
    assert_eq!(opts(b"dbname='a'user=b")["user"], b"b");
    // A trailing lone backslash is dropped by libpq.
    assert_eq!(opts(br"password=abc\")["password"], b"abc");
    assert_eq!(opts(b"dbname=\xff\xfe")["dbname"], b"\xff\xfe");
}

#[test]
fn conninfo_preserves_other_bytes() {
    let s = b"password='p\xff\\'w' dbname=app sslmode=require";
    let out = rewrite_conninfo(s, &Env::new(), &mut jw03)
        .unwrap()
        .unwrap();
    assert_eq!(
        out,
        b"password='p\xff\\'w' dbname=app_jw03 sslmode=require".to_vec()
    );
}

#[test]
fn conninfo_syntax_errors() {
    assert!(syntax_err("myapp").contains("missing \"=\""));
    assert!(syntax_err("host=h x").contains("missing"));
    assert!(syntax_err("dbname='abc").contains("unterminated"));
    assert!(syntax_err(r"dbname='abc\'").contains("unterminated"));
    assert!(syntax_err("=x").contains("empty keyword"));
    assert!(syntax_err("host = = x y").contains("missing"));
    // Messages never quote what may be a piece of a password.
    let m = syntax_err("password=se cret dbname=x");
    assert!(!m.contains("cret") && !m.contains("se"), "{m}");
    let m = syntax_err("user=u password='sec");
    assert!(!m.contains("sec"), "{m}");
    assert!(syntax_err("host=h dbname").contains("\"dbname\""));
    let e = rewrite_conninfo(b"a\0b", &Env::new(), &mut jw03).unwrap_err();
    assert!(matches!(e, RewriteError::Syntax(_)));
}

#[test]
fn conninfo_fallbacks() {
    // Empty conninfo: PGDATABASE.
    let env = Env::new().var("PGDATABASE", "envdb");
    assert_eq!(rw_env("", &env).unwrap().unwrap(), "dbname=envdb_jw03");
    assert_eq!(
        rw_env("host=h", &env).unwrap().unwrap(),
        "host=h dbname=envdb_jw03"
    );
    assert_eq!(
        rw_env("host=h   ", &env).unwrap().unwrap(),
        "host=h    dbname=envdb_jw03"
    );
    assert_eq!(rw_env("  ", &env).unwrap().unwrap(), "   dbname=envdb_jw03");
    // No PGDATABASE: PGUSER, then the OS user.
    let env = Env::new().var("PGUSER", "bob");
    assert_eq!(
        rw_env("host=h", &env).unwrap().unwrap(),
        "host=h dbname=bob_jw03"
    );
    assert_eq!(rw("host=h").unwrap(), "host=h dbname=osuser_jw03");
    // Empty PGDATABASE / PGUSER are "set but empty": the next fallback applies.
    let env = Env::new().var("PGDATABASE", "").var("PGUSER", "");
    assert_eq!(
        rw_env("host=h", &env).unwrap().unwrap(),
        "host=h dbname=osuser_jw03"
    );
    // The user keyword beats PGUSER; an explicitly empty user means the OS user.
    let env = Env::new().var("PGUSER", "bob");
    assert_eq!(
        rw_env("user=carol", &env).unwrap().unwrap(),
        "user=carol dbname=carol_jw03"
    );
    assert_eq!(
        rw_env("user=''", &env).unwrap().unwrap(),
        "user='' dbname=osuser_jw03"
    );
    // An explicitly empty dbname ignores PGDATABASE and is rewritten in place.
    let env = Env::new().var("PGDATABASE", "envdb").var("PGUSER", "bob");
    assert_eq!(
        rw_env("dbname='' host=h", &env).unwrap().unwrap(),
        "dbname='bob_jw03' host=h"
    );
    assert_eq!(
        rw_env("host=h dbname=", &env).unwrap().unwrap(),
        "host=h dbname=bob_jw03"
    );
    assert_eq!(
        rw_env("host=h dbname=  ", &env).unwrap().unwrap(),
        "host=h dbname=  bob_jw03"
    );
    // No user name at all: refuse rather than guess.
    assert!(matches!(
        rw_env("host=h", &Env::new().no_user()),
        Err(RewriteError::Syntax(_))
    ));
    // A value running to the end would swallow an appended setting: prepend instead.
    let env = Env::new().var("PGDATABASE", "envdb");
    assert_eq!(
        rw_env("password=", &env).unwrap().unwrap(),
        "dbname=envdb_jw03 password="
    );
    assert_eq!(
        rw_env("password=   ", &env).unwrap().unwrap(),
        "dbname=envdb_jw03 password=   "
    );
    assert_eq!(
        rw_env(r"password=ab\", &env).unwrap().unwrap(),
        r"dbname=envdb_jw03 password=ab\"
    );
    assert_eq!(
        rw_env(r"password=ab\  ", &env).unwrap().unwrap(),
        r"password=ab\   dbname=envdb_jw03"
    );
    assert_eq!(
        opts(br"password=ab\   dbname=envdb_jw03")["password"],
        b"ab "
    );
}

const SVC: &str = "# comment\n[other]\ndbname=nope\n\n  [svc]  \ndbname=svcdb\nuser=svcuser\nhost=h\ndbname=second\n[next]\ndbname=no\n";

#[test]
fn service_fallbacks() {
    let home = Env::new()
        .var("HOME", "/home/me")
        .file("/home/me/.pg_service.conf", SVC);
    let env = home
        .clone()
        .var("PGSERVICE", "svc")
        .var("PGDATABASE", "envdb");
    // The service's dbname beats PGDATABASE; the first setting in the group wins.
    assert_eq!(
        rw_env("host=x", &env).unwrap().unwrap(),
        "host=x dbname=svcdb_jw03"
    );
    // The service keyword beats PGSERVICE.
    let env = home.clone().var("PGSERVICE", "nosuch");
    assert_eq!(
        rw_env("service=svc", &env).unwrap().unwrap(),
        "service=svc dbname=svcdb_jw03"
    );
    // An explicit dbname wins (and the service file is not even needed).
    assert_eq!(
        rw_env("service=nosuch dbname=d", &env).unwrap().unwrap(),
        "service=nosuch dbname=d_jw03"
    );
    // A missing service is an error, as in libpq.
    let e = rw_env("host=x", &env).unwrap_err();
    assert!(
        e.to_string()
            .contains("definition of service \"nosuch\" not found"),
        "{e}"
    );
    // A service without dbname: PGDATABASE, then its user.
    let text = "[s]\nuser=svcuser\n";
    let env = Env::new()
        .var("PGSERVICEFILE", "/x/svc.conf")
        .file("/x/svc.conf", text)
        .var("PGSERVICE", "s");
    assert_eq!(rw_env("", &env).unwrap().unwrap(), "dbname=svcuser_jw03");
    assert_eq!(
        rw_env("", &env.clone().var("PGDATABASE", "e"))
            .unwrap()
            .unwrap(),
        "dbname=e_jw03"
    );
    assert_eq!(
        rw_env("user=u", &env).unwrap().unwrap(),
        "user=u dbname=u_jw03"
    );
    // Explicitly empty dbname: the service's dbname does not apply, its user does.
    let env = home.clone().var("PGSERVICE", "svc");
    assert_eq!(
        rw_env("dbname=''", &env).unwrap().unwrap(),
        "dbname='svcuser_jw03'"
    );
}

#[test]
fn service_fallbacks_files() {
    let home = Env::new()
        .var("HOME", "/home/me")
        .file("/home/me/.pg_service.conf", SVC);
    // PGSYSCONFDIR, then the Debian default, when the first file lacks the group.
    let env = home
        .clone()
        .var("PGSYSCONFDIR", "/etc/pg")
        .file("/etc/pg/pg_service.conf", "[sys]\ndbname=sysdb\n");
    assert_eq!(
        rw_env("service=sys", &env).unwrap().unwrap(),
        "service=sys dbname=sysdb_jw03"
    );
    let env = Env::new().file(
        "/etc/postgresql-common/pg_service.conf",
        "[d]\ndbname=debdb\n",
    );
    assert_eq!(
        rw_env("service=d", &env).unwrap().unwrap(),
        "service=d dbname=debdb_jw03"
    );
    // A group found in the first file ends the search even without a dbname.
    let env = Env::new()
        .var("PGSERVICEFILE", "/a")
        .file("/a", "[d]\nport=1\n")
        .file(
            "/etc/postgresql-common/pg_service.conf",
            "[d]\ndbname=debdb\n",
        );
    assert_eq!(
        rw_env("service=d", &env).unwrap().unwrap(),
        "service=d dbname=osuser_jw03"
    );
}

#[test]
fn service_file_keyword_and_errors() {
    // The servicefile keyword (libpq 18).
    let env = Env::new().file("/s.conf", "[q]\ndbname=qdb\n");
    assert_eq!(
        rw_env("servicefile=/s.conf service=q", &env)
            .unwrap()
            .unwrap(),
        "servicefile=/s.conf service=q dbname=qdb_jw03"
    );
    // Errors in the group are errors.
    for bad in ["[q]\nnoequals\n", "[q]\nservice=x\n", "[q]\nldap://x/y\n"] {
        let env = Env::new().file("/s.conf", bad);
        assert!(
            rw_env("servicefile=/s.conf service=q", &env).is_err(),
            "{bad}"
        );
    }
    let long = format!("[q]\nhost={}\n", "h".repeat(1020));
    let env = Env::new().file("/s.conf", &long);
    assert!(rw_env("servicefile=/s.conf service=q", &env)
        .unwrap_err()
        .to_string()
        .contains("too long"));
    // Errors outside the group are not looked at.
    let env = Env::new().file("/s.conf", "[zz]\nnoequals\n[q]\ndbname=ok\n");
    assert_eq!(
        rw_env("servicefile=/s.conf service=q", &env)
            .unwrap()
            .unwrap(),
        "servicefile=/s.conf service=q dbname=ok_jw03"
    );
    // `dbname = x` (spaces) is not the dbname key.
    assert_eq!(
        parse_service_file("[q]\ndbname = x\n", b"q", "f").unwrap(),
        Some(ServiceVals::default())
    );
    assert_eq!(
        parse_service_file("[qq]\ndbname=x\n", b"q", "f").unwrap(),
        None
    );
    // Like libpq, anything after the closing bracket is ignored.
    assert_eq!(
        parse_service_file("[q]x\ndbname=x\n", b"q", "f")
            .unwrap()
            .unwrap()
            .dbname,
        Some(b"x".to_vec())
    );
}

#[test]
fn decide_contract() {
    let calls = Cell::new(0);
    let mut keep = |n: &str| {
        calls.set(calls.get() + 1);
        assert_eq!(n, "app");
        Ok(None)
    };
    assert_eq!(
        rewrite_conninfo(b"dbname=a dbname=app", &Env::new(), &mut keep),
        Ok(None)
    );
    assert_eq!(calls.get(), 1);
    let mut refuse = |_: &str| Err("dagz: no".to_owned());
    assert_eq!(
        rewrite_conninfo(b"dbname=app", &Env::new(), &mut refuse),
        Err(RewriteError::Refused("dagz: no".into()))
    );
    let mut same = |n: &str| Ok(Some(n.to_owned()));
    assert_eq!(
        rewrite_conninfo(b"dbname=app", &Env::new(), &mut same),
        Ok(None)
    );
    let mut empty = |_: &str| Ok(Some(String::new()));
    assert!(matches!(
        rewrite_conninfo(b"dbname=app", &Env::new(), &mut empty),
        Err(RewriteError::Refused(_))
    ));
    let mut nul = |_: &str| Ok(Some("a\0b".to_owned()));
    assert!(matches!(
        rewrite_conninfo(b"dbname=app", &Env::new(), &mut nul),
        Err(RewriteError::Refused(_))
    ));
    // A non-UTF-8 name is not handed to the decision.
    let mut never = |_: &str| -> Result<Option<String>, String> { panic!("called") };
    assert!(matches!(
        rewrite_conninfo(b"dbname=\xff", &Env::new(), &mut never),
        Err(RewriteError::Syntax(_))
    ));
    // New names that need quoting get it.
    let mut spaced = |_: &str| Ok(Some("a b'c\\".to_owned()));
    let out = rewrite_conninfo(b"dbname=app port=1", &Env::new(), &mut spaced)
        .unwrap()
        .unwrap();
    assert_eq!(out, br"dbname='a b\'c\\' port=1".to_vec());
}

#[test]
fn uris() {
    assert_eq!(
        rw("postgresql://u:pw@h:5432/myapp?sslmode=disable").unwrap(),
        "postgresql://u:pw@h:5432/myapp_jw03?sslmode=disable"
    );
    assert_eq!(rw("postgres://h/myapp").unwrap(), "postgres://h/myapp_jw03");
    assert_eq!(
        rw("postgresql://h/my%20app").unwrap(),
        "postgresql://h/my%20app_jw03"
    );
    assert_eq!(
        rw("postgresql://h/a%2fb").unwrap(),
        "postgresql://h/a%2Fb_jw03"
    );
    assert_eq!(
        rw("postgresql://h/a/b").unwrap(),
        "postgresql://h/a%2Fb_jw03"
    );
    assert_eq!(
        rw("postgresql://u@h1:5432,h2:5433/db").unwrap(),
        "postgresql://u@h1:5432,h2:5433/db_jw03"
    );
    assert_eq!(
        rw("postgresql://[::1]:5432/db").unwrap(),
        "postgresql://[::1]:5432/db_jw03"
    );
    assert_eq!(
        rw("postgresql://[::1],[fe80::2]/db").unwrap(),
        "postgresql://[::1],[fe80::2]/db_jw03"
    );
    // ?dbname= overrides the path; the last one wins; keys are percent-decoded.
    assert_eq!(
        rw("postgresql://h/db?dbname=other").unwrap(),
        "postgresql://h/db?dbname=other_jw03"
    );
    assert_eq!(
        rw("postgresql://h/db?db%6Eame=o&port=1").unwrap(),
        "postgresql://h/db?db%6Eame=o_jw03&port=1"
    );
    assert_eq!(
        rw("postgresql://h?dbname=a&dbname=b").unwrap(),
        "postgresql://h?dbname=a&dbname=b_jw03"
    );
    // `+` is not a space in libpq.
    assert_eq!(opts(b"postgresql://h/a+b")["dbname"], b"a+b");
}

#[test]
fn uris_fallbacks() {
    // No path / empty path: the fallback, appended as ?dbname=.
    let env = Env::new().var("PGDATABASE", "envdb");
    assert_eq!(
        rw_env("postgresql://h", &env).unwrap().unwrap(),
        "postgresql://h?dbname=envdb_jw03"
    );
    assert_eq!(
        rw_env("postgresql://", &env).unwrap().unwrap(),
        "postgresql://?dbname=envdb_jw03"
    );
    assert_eq!(
        rw_env("postgresql://h/", &env).unwrap().unwrap(),
        "postgresql://h/?dbname=envdb_jw03"
    );
    assert_eq!(
        rw_env("postgresql://h?", &env).unwrap().unwrap(),
        "postgresql://h?dbname=envdb_jw03"
    );
    assert_eq!(
        rw_env("postgresql://h/?sslmode=disable", &env)
            .unwrap()
            .unwrap(),
        "postgresql://h/?sslmode=disable&dbname=envdb_jw03"
    );
    assert_eq!(
        rw_env("postgresql://h?a=1&", &env).unwrap().unwrap(),
        "postgresql://h?a=1&dbname=envdb_jw03"
    );
    assert_eq!(
        rw_env("postgresql://bob@h", &Env::new()).unwrap().unwrap(),
        "postgresql://bob@h?dbname=bob_jw03"
    );
    // An empty ?dbname= is an explicit empty setting: the user, in place.
    assert_eq!(
        rw_env("postgresql://h/db?dbname=&user=al", &env)
            .unwrap()
            .unwrap(),
        "postgresql://h/db?dbname=al_jw03&user=al"
    );
    // Userinfo is decoded; the lookahead stops at the first '/'.
    let o = opts(b"postgresql://a%40b:p%3Aw@h/d");
    assert_eq!(
        (o["user"].as_slice(), o["password"].as_slice()),
        (&b"a@b"[..], &b"p:w"[..])
    );
    let o = opts(b"postgresql://u:p:q@h/d");
    assert_eq!(o["password"], b"p:q");
    let o = opts(b"postgresql://h/d@x");
    assert_eq!(
        (o["host"].as_slice(), o["dbname"].as_slice()),
        (&b"h"[..], &b"d@x"[..])
    );
    let o = opts(b"postgresql://h1,h2:5433,[::1]:7/d");
    assert_eq!(
        (o["host"].as_slice(), o["port"].as_slice()),
        (&b"h1,h2,::1"[..], &b",5433,7"[..])
    );
    let o = opts(b"postgresql://u@?ssl=true");
    assert_eq!(o["sslmode"], b"require");
    assert!(!o.contains_key("host"));
}

#[test]
fn uri_errors() {
    for bad in [
        "postgresql://h/%zz",
        "postgresql://h/%4",
        "postgresql://h/%",
        "postgresql://h/a%00b",
        "postgresql://u:p%q@h/d",
        "postgresql://h%/d",
        "postgresql://[::1",
        "postgresql://[]/d",
        "postgresql://[::1]x/d",
        "postgresql://h/d?a",
        "postgresql://h/d?a=b=c",
        "postgresql://h/d?a=1&&b=2",
        "postgresql://h/d?%zz=1",
    ] {
        let m = syntax_err(bad);
        assert!(!m.contains("p%q"), "{m}");
    }
}

fn params(list: &[(&str, Option<&str>)]) -> ParamList {
    list.iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
        .collect()
}

fn rp(list: &[(&str, Option<&str>)], expand: bool, env: &Env) -> Option<ParamList> {
    let p: Vec<(&[u8], Option<&[u8]>)> = list
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.map(str::as_bytes)))
        .collect();
    rewrite_params(&p, expand, env, &mut jw03).unwrap()
}

#[test]
fn params_plain() {
    let env = Env::new();
    let l = [("host", Some("h")), ("dbname", Some("app")), ("user", None)];
    assert_eq!(
        rp(&l, false, &env).unwrap(),
        params(&[
            ("host", Some("h")),
            ("dbname", Some("app_jw03")),
            ("user", None)
        ])
    );
    assert_eq!(rp(&[("dbname", Some("app_jw03"))], true, &env), None);
    // Later non-empty values override; empty and NULL values are skipped.
    let l = [
        ("dbname", Some("a")),
        ("dbname", Some("b")),
        ("dbname", Some("")),
        ("dbname", None),
    ];
    assert_eq!(
        rp(&l, false, &env).unwrap(),
        params(&[
            ("dbname", Some("a")),
            ("dbname", Some("b_jw03")),
            ("dbname", Some("")),
            ("dbname", None)
        ])
    );
    // No dbname: appended.
    let env = Env::new().var("PGUSER", "bob");
    assert_eq!(
        rp(&[("host", Some("h"))], true, &env).unwrap(),
        params(&[("host", Some("h")), ("dbname", Some("bob_jw03"))])
    );
    assert_eq!(
        rp(&[("dbname", Some("")), ("user", Some("al"))], true, &env).unwrap(),
        params(&[
            ("dbname", Some("")),
            ("user", Some("al")),
            ("dbname", Some("al_jw03"))
        ])
    );
    assert_eq!(
        rp(&[], false, &env).unwrap(),
        params(&[("dbname", Some("bob_jw03"))])
    );
    // Without expand_dbname a value with '=' is a plain (odd) name.
    assert_eq!(
        rp(&[("dbname", Some("host=x"))], false, &env).unwrap(),
        params(&[("dbname", Some("host=x_jw03"))])
    );
}

#[test]
fn params_expand_dbname() {
    let env = Env::new();
    // A URI as the first dbname: rewritten inside.
    let l = [
        ("host", Some("h")),
        ("dbname", Some("postgresql://u@h2/app?sslmode=disable")),
    ];
    assert_eq!(
        rp(&l, true, &env).unwrap(),
        params(&[
            ("host", Some("h")),
            ("dbname", Some("postgresql://u@h2/app_jw03?sslmode=disable"))
        ])
    );
    // A conninfo as the first dbname.
    let l = [("dbname", Some("dbname='my app' host=x"))];
    assert_eq!(
        rp(&l, true, &env).unwrap(),
        params(&[("dbname", Some("dbname='my app_jw03' host=x"))])
    );
    // A later plain dbname overrides the expanded one.
    let l = [("dbname", Some("host=x dbname=a")), ("dbname", Some("b"))];
    assert_eq!(
        rp(&l, true, &env).unwrap(),
        params(&[
            ("dbname", Some("host=x dbname=a")),
            ("dbname", Some("b_jw03"))
        ])
    );
    // Only the first non-NULL dbname is expanded.
    let l = [
        ("dbname", None),
        ("dbname", Some("plain")),
        ("dbname", Some("host=x")),
    ];
    assert_eq!(
        rp(&l, true, &env).unwrap(),
        params(&[
            ("dbname", None),
            ("dbname", Some("plain")),
            ("dbname", Some("host=x_jw03"))
        ])
    );
}

#[test]
fn params_expand_dbname_fallbacks() {
    let env = Env::new();
    // The expanded string without a dbname: its user; the new name is appended.
    let l = [("user", Some("tom")), ("dbname", Some("host=x user=sue"))];
    assert_eq!(
        rp(&l, true, &env).unwrap(),
        params(&[
            ("user", Some("tom")),
            ("dbname", Some("host=x user=sue")),
            ("dbname", Some("sue_jw03"))
        ])
    );
    let l = [("dbname", Some("host=x user=sue")), ("user", Some("tom"))];
    assert_eq!(
        rp(&l, true, &env).unwrap().last().unwrap().1.as_deref(),
        Some(&b"tom_jw03"[..])
    );
    // An expanded URI without a path.
    let env2 = Env::new().var("PGDATABASE", "e");
    let l = [("dbname", Some("postgresql://h"))];
    assert_eq!(
        rp(&l, true, &env2).unwrap(),
        params(&[
            ("dbname", Some("postgresql://h")),
            ("dbname", Some("e_jw03"))
        ])
    );
    // A new name that looks like a connection string is never expanded.
    let env3 = Env::new().var("PGDATABASE", "a=b");
    assert_eq!(
        rp(&[("host", Some("h"))], true, &env3).unwrap(),
        params(&[("host", Some("h")), ("dbname", Some("dbname='a=b_jw03'"))])
    );
    assert_eq!(
        rp(&[("host", Some("h"))], false, &env3).unwrap(),
        params(&[("host", Some("h")), ("dbname", Some("a=b_jw03"))])
    );
    let mut eq = |_: &str| Ok(Some("x=y".to_owned()));
    let p: Vec<(&[u8], Option<&[u8]>)> = vec![(b"dbname", Some(b"app"))];
    let out = rewrite_params(&p, true, &env, &mut eq).unwrap().unwrap();
    assert_eq!(out, params(&[("dbname", Some("dbname='x=y'"))]));
    // Syntax errors in the expanded string are errors.
    let p: Vec<(&[u8], Option<&[u8]>)> = vec![(b"dbname", Some(b"dbname='x"))];
    assert!(matches!(
        rewrite_params(&p, true, &env, &mut jw03),
        Err(RewriteError::Syntax(_))
    ));
    let p: Vec<(&[u8], Option<&[u8]>)> = vec![(b"dbname", Some(b"dbname='x"))];
    assert!(rewrite_params(&p, false, &env, &mut jw03).is_ok());
}

fn sd(db: Option<&str>, login: Option<&str>, env: &Env) -> Option<String> {
    rewrite_setdb(
        db.map(str::as_bytes),
        login.map(str::as_bytes),
        env,
        &mut jw03,
    )
    .unwrap()
    .map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn setdb_login() {
    let env = Env::new().var("PGUSER", "pguser");
    assert_eq!(sd(None, Some("bob"), &env).unwrap(), "bob_jw03");
    assert_eq!(sd(Some(""), Some("bob"), &env).unwrap(), "bob_jw03");
    assert_eq!(sd(None, None, &env).unwrap(), "pguser_jw03");
    assert_eq!(sd(None, Some(""), &env).unwrap(), "pguser_jw03");
    assert_eq!(sd(Some("myapp"), Some("bob"), &env).unwrap(), "myapp_jw03");
    assert_eq!(sd(Some("myapp_jw03"), None, &env), None);
    // PGDATABASE beats the login.
    assert_eq!(
        sd(None, Some("bob"), &env.clone().var("PGDATABASE", "e")).unwrap(),
        "e_jw03"
    );
    // A conninfo or URI as dbName.
    assert_eq!(
        sd(Some("dbname=app host=x"), None, &env).unwrap(),
        "dbname=app_jw03 host=x"
    );
    assert_eq!(
        sd(Some("host=x"), Some("bob"), &env).unwrap(),
        "host=x dbname=bob_jw03"
    );
    assert_eq!(
        sd(Some("host=x user=u"), Some("bob"), &env).unwrap(),
        "host=x user=u dbname=bob_jw03"
    );
    assert_eq!(
        sd(Some("host=x user=u"), None, &env).unwrap(),
        "host=x user=u dbname=u_jw03"
    );
    assert_eq!(
        sd(Some("postgresql://h/app"), None, &env).unwrap(),
        "postgresql://h/app_jw03"
    );
    // A service in PGSERVICE.
    let env = Env::new()
        .var("PGSERVICE", "s")
        .var("PGSERVICEFILE", "/f")
        .file("/f", "[s]\ndbname=sdb\n");
    assert_eq!(sd(None, Some("bob"), &env).unwrap(), "sdb_jw03");
    // New names that look like connection strings are wrapped.
    let mut eq = |_: &str| Ok(Some("postgres://x".to_owned()));
    let out = rewrite_setdb(Some(b"app"), None, &Env::new(), &mut eq)
        .unwrap()
        .unwrap();
    assert_eq!(out, b"dbname='postgres://x'".to_vec());
    assert!(rewrite_setdb(Some(b"dbname='x"), None, &Env::new(), &mut jw03).is_err());
}

#[test]
fn urls() {
    let g = |u: &str| url_get_db(u.as_bytes()).unwrap();
    let s = |u: &str, d: &str| String::from_utf8(url_set_db(u.as_bytes(), d).unwrap()).unwrap();
    assert_eq!(
        g("postgresql+psycopg2://u:p@h:5432/db?x=1").as_deref(),
        Some("db")
    );
    assert_eq!(
        s("postgresql+psycopg2://u:p@h:5432/db?x=1", "db_jw03"),
        "postgresql+psycopg2://u:p@h:5432/db_jw03?x=1"
    );
    assert_eq!(
        g("mysql+pymysql://u:p@h/db?charset=utf8mb4").as_deref(),
        Some("db")
    );
    assert_eq!(
        s("mysql://u:p@h:3306/db", "db_jw01"),
        "mysql://u:p@h:3306/db_jw01"
    );
    assert_eq!(g("mysql://h:3306"), None);
    assert_eq!(g("mysql://h:3306/"), None);
    assert_eq!(s("mysql://h:3306", "n"), "mysql://h:3306/n");
    assert_eq!(s("mysql://h:3306/", "n"), "mysql://h:3306/n");
    assert_eq!(s("mysql://h:3306?x=1", "n"), "mysql://h:3306/n?x=1");
    // SQLAlchemy: a password may hold '/' and '?'.
    assert_eq!(g("mysql://u:p/w?x@h/db").as_deref(), Some("db"));
    assert_eq!(s("mysql://u:p/w?x@h/db", "n"), "mysql://u:p/w?x@h/n");
    // A mysql ?database= is not the database.
    assert_eq!(g("mysql://h/db?database=x").as_deref(), Some("db"));
    assert_eq!(
        g("postgresql+asyncpg://h/db?database=x").as_deref(),
        Some("x")
    );
    assert_eq!(
        s("postgresql+asyncpg://h/db?database=x", "y"),
        "postgresql+asyncpg://h/db?database=y"
    );
}

#[test]
fn urls_libpq_uris() {
    let g = |u: &str| url_get_db(u.as_bytes()).unwrap();
    let s = |u: &str, d: &str| String::from_utf8(url_set_db(u.as_bytes(), d).unwrap()).unwrap();
    // libpq URIs as libpq reads them.
    assert_eq!(
        g("postgresql://u@h1:5432,h2:5433/db").as_deref(),
        Some("db")
    );
    assert_eq!(
        s("postgresql://u@h1:5432,h2:5433/db", "db_jw03"),
        "postgresql://u@h1:5432,h2:5433/db_jw03"
    );
    assert_eq!(g("postgres://[::1]:5432/d%20b").as_deref(), Some("d b"));
    assert_eq!(
        s("postgres://[::1]:5432/d%20b", "d b_jw03"),
        "postgres://[::1]:5432/d%20b_jw03"
    );
    assert_eq!(s("mysql://[::1]:3306", "x"), "mysql://[::1]:3306/x");
    assert_eq!(g("postgresql://h/db?dbname=q").as_deref(), Some("q"));
    assert_eq!(
        s("postgresql://h/db?dbname=q", "z"),
        "postgresql://h/db?dbname=z"
    );
    assert_eq!(g("postgresql://h"), None);
    assert_eq!(s("postgresql://h", "n"), "postgresql://h/n");
    assert_eq!(
        s("postgresql://h?sslmode=x", "n"),
        "postgresql://h/n?sslmode=x"
    );
    assert_eq!(
        s("postgresql://h/?sslmode=x", "n"),
        "postgresql://h/n?sslmode=x"
    );
    assert_eq!(s("postgresql://", "n"), "postgresql:///n");
    assert_eq!(
        url_get_db(b"postgresql:///n").unwrap().as_deref(),
        Some("n")
    );
    assert_eq!(s("mysql://h/a", "a/b?c"), "mysql://h/a%2Fb%3Fc");
    assert_eq!(g("mysql://h/a%2Fb%3Fc").as_deref(), Some("a/b?c"));
    for bad in [
        "myapp",
        "host=h dbname=x",
        "://h/x",
        "1x://h/d",
        "postgresql://h/%zz",
        "mysql://h/%zz",
    ] {
        assert!(url_get_db(bad.as_bytes()).is_err(), "{bad}");
        assert!(url_set_db(bad.as_bytes(), "x").is_err(), "{bad}");
    }
    assert!(url_get_db(b"mysql://h/\xff").is_err());
}

#[test]
fn redaction() {
    assert_eq!(
        redact(b"host=h password=secret dbname=d"),
        "host=h password=*** dbname=d"
    );
    assert_eq!(
        redact(b"password = 'se cret' user=u"),
        "password = *** user=u"
    );
    assert_eq!(
        redact(b"sslpassword=k password=p"),
        "sslpassword=*** password=***"
    );
    assert_eq!(
        redact(b"postgresql://u:secret@h/db"),
        "postgresql://u:***@h/db"
    );
    assert_eq!(
        redact(b"postgresql://u@h/db?password=secret&x=1"),
        "postgresql://u@h/db?password=***&x=1"
    );
    assert_eq!(redact(b"postgresql://h/db"), "postgresql://h/db");
    assert_eq!(
        redact(b"mysql+pymysql://u:se/cret@h/db"),
        "mysql+pymysql://u:***@h/db"
    );
    assert_eq!(
        redact(b"dbname='postgresql://u:pw@h/x' host=h"),
        "dbname=postgresql://u:***@h/x host=h"
    );
    // Unparsable input is redacted generously.
    for s in [
        &b"host=h password=secret x"[..],
        b"password='secret",
        b"user=u PASSWORD = secret",
        b"postgresql://u:secret@[::1/db",
        b"postgresql://u:sec@ret@h/%zz",
        b"a\0 password=secret",
    ] {
        let r = redact(s);
        assert!(!r.contains("secret") && !r.contains("ret@"), "{r}");
    }
    assert_eq!(redact(b"dbname=x"), "dbname=x");
    assert_eq!(redact(b""), "");
}

#[test]
fn display_is_one_line() {
    assert_eq!(
        RewriteError::Refused("dagz: x".into()).to_string(),
        "dagz: x"
    );
    assert!(RewriteError::Syntax("y".into())
        .to_string()
        .ends_with(": y"));
}

// ----------------------------------------------------------------- property tests

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

const KEYS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "options",
    "sslmode",
    "application_name",
];

#[derive(Debug, Clone)]
struct Item {
    key: &'static str,
    val: Vec<u8>,
    quoted: bool,
    extra_escapes: bool,
    pre_eq: usize,
    post_eq: usize,
    sep: Vec<u8>,
}

fn item() -> impl Strategy<Value = Item> {
    (
        prop::sample::select(KEYS),
        value_bytes(),
        any::<bool>(),
        any::<bool>(),
        0usize..2,
        0usize..2,
        prop::collection::vec(prop::sample::select(b" \t\n".to_vec()), 0..3),
    )
        .prop_map(
            |(key, val, quoted, extra_escapes, pre_eq, post_eq, sep)| Item {
                key,
                val,
                quoted,
                extra_escapes,
                pre_eq,
                post_eq,
                sep,
            },
        )
}

/// A conninfo built from items, with the raw span of the last dbname value.
fn build_conninfo(items: &[Item], lead: usize) -> (Vec<u8>, Option<Range<usize>>) {
    let mut s = vec![b' '; lead];
    let mut span = None;
    for (k, it) in items.iter().enumerate() {
        s.extend_from_slice(it.key.as_bytes());
        s.extend(std::iter::repeat_n(b' ', it.pre_eq));
        s.push(b'=');
        s.extend(std::iter::repeat_n(b' ', it.post_eq));
        let start = s.len();
        let quoted = it.quoted || it.val.is_empty();
        if quoted {
            s.extend(conn_quote(&it.val));
        } else {
            for (i, &c) in it.val.iter().enumerate() {
                if is_space(c)
                    || c == b'\\'
                    || (i == 0 && c == b'\'')
                    || (it.extra_escapes && c == b'a')
                {
                    s.push(b'\\');
                }
                s.push(c);
            }
        }
        if it.key == "dbname" {
            span = Some(start..s.len());
        }
        // Unquoted values need whitespace after them (quoted ones do not).
        if k + 1 < items.len() || !it.sep.is_empty() {
            s.extend_from_slice(&it.sep);
            if !quoted && it.sep.is_empty() {
                s.push(b' ');
            }
        }
    }
    (s, span)
}

fn expected(items: &[Item]) -> BTreeMap<String, Vec<u8>> {
    items
        .iter()
        .map(|i| (i.key.to_owned(), i.val.clone()))
        .collect()
}

fn without_db(mut m: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    m.remove("dbname");
    m
}

#[derive(Debug, Clone)]
struct UriSpec {
    short: bool,
    user: Option<(Vec<u8>, Option<Vec<u8>>)>,
    hosts: Vec<(u8, Option<u16>)>,
    path: Option<Vec<u8>>,
    query: Vec<(&'static str, Vec<u8>)>,
    enc_all: bool,
}

fn uri_spec() -> impl Strategy<Value = UriSpec> {
    (
        any::<bool>(),
        prop::option::of((value_bytes(), prop::option::of(value_bytes()))),
        prop::collection::vec((0u8..4, prop::option::of(1u16..9999)), 1..4),
        prop::option::of(value_bytes()),
        prop::collection::vec((prop::sample::select(KEYS), value_bytes()), 0..4),
        any::<bool>(),
    )
        .prop_map(|(short, user, hosts, path, query, enc_all)| UriSpec {
            short,
            user,
            hosts,
            path,
            query,
            enc_all,
        })
}

fn enc(v: &[u8], all: bool) -> Vec<u8> {
    if !all {
        return pct_encode(v);
    }
    v.iter()
        .flat_map(|c| format!("%{c:02x}").into_bytes())
        .collect()
}

type BuiltUri = (Vec<u8>, BTreeMap<String, Vec<u8>>, Option<Range<usize>>);

const HOSTS: [&str; 4] = ["", "localhost", "[::1]", "db.example"];

/// A URI, its expected options and the raw span of the effective dbname.
fn build_uri(u: &UriSpec) -> BuiltUri {
    let mut s = if u.short {
        b"postgres://".to_vec()
    } else {
        b"postgresql://".to_vec()
    };
    let mut m = BTreeMap::new();
    let mut span = None;
    if let Some((user, pw)) = &u.user {
        s.extend(enc(user, u.enc_all));
        if !user.is_empty() {
            m.insert("user".to_owned(), user.clone());
        }
        if let Some(pw) = pw {
            s.push(b':');
            s.extend(enc(pw, u.enc_all));
            if !pw.is_empty() {
                m.insert("password".to_owned(), pw.clone());
            }
        }
        s.push(b'@');
    }
    let (mut hosts, mut ports) = (Vec::new(), Vec::new());
    for (k, (h, p)) in u.hosts.iter().enumerate() {
        if k > 0 {
            s.push(b',');
            hosts.push(b',');
            ports.push(b',');
        }
        let h = HOSTS[usize::from(*h % 4)];
        s.extend_from_slice(h.as_bytes());
        hosts.extend_from_slice(h.trim_start_matches('[').trim_end_matches(']').as_bytes());
        if let Some(p) = p {
            s.extend(format!(":{p}").into_bytes());
            ports.extend(p.to_string().into_bytes());
        }
    }
    if !hosts.is_empty() {
        m.insert("host".to_owned(), hosts);
    }
    if !ports.is_empty() {
        m.insert("port".to_owned(), ports);
    }
    if let Some(path) = &u.path {
        s.push(b'/');
        let start = s.len();
        s.extend(enc(path, u.enc_all));
        if !path.is_empty() {
            m.insert("dbname".to_owned(), path.clone());
            span = Some(start..s.len());
        }
    }
    for (k, (key, val)) in u.query.iter().enumerate() {
        s.push(if k == 0 { b'?' } else { b'&' });
        s.extend_from_slice(key.as_bytes());
        s.push(b'=');
        let start = s.len();
        s.extend(enc(val, u.enc_all));
        m.insert((*key).to_owned(), val.clone());
        if *key == "dbname" {
            span = Some(start..s.len());
        }
    }
    (s, m, span)
}

fn jw_env() -> Env {
    Env::new().var("PGUSER", "fallbackuser")
}

/// The checks shared by conninfo and URI properties.
fn check_rewrite(
    s: &[u8],
    want: &BTreeMap<String, Vec<u8>>,
    span: Option<Range<usize>>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&opts(s), want);
    let effective = match (want.get("dbname"), want.get("user")) {
        (Some(d), _) if !d.is_empty() => d.clone(),
        (_, Some(u)) if !u.is_empty() => u.clone(),
        // An explicitly empty user means the OS user, PGUSER is not consulted.
        (_, Some(_)) => b"osuser".to_vec(),
        (_, None) => b"fallbackuser".to_vec(),
    };
    let res = rewrite_conninfo(s, &jw_env(), &mut jw03);
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
    let new = format!("{name}_jw03");
    let got = opts(&out);
    prop_assert_eq!(got.get("dbname").map(Vec::as_slice), Some(new.as_bytes()));
    prop_assert_eq!(without_db(got), without_db(want.clone()));
    match span {
        Some(r) if want.get("dbname").is_some_and(|d| !d.is_empty()) => {
            prop_assert!(out.starts_with(&s[..r.start]));
            prop_assert!(out.ends_with(&s[r.end..]));
        }
        _ => {
            let w = s;
            prop_assert!(
                out.starts_with(w) || out.ends_with(w) || want.contains_key("dbname"),
                "{:?}",
                lossy(&out)
            );
        }
    }
    // Idempotent.
    prop_assert_eq!(rewrite_conninfo(&out, &jw_env(), &mut jw03), Ok(None));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn conninfo_rewrite_properties(items in prop::collection::vec(item(), 0..6), lead in 0usize..2) {
        let (s, span) = build_conninfo(&items, lead);
        check_rewrite(&s, &expected(&items), span)?;
    }

    #[test]
    fn uri_rewrite_properties(u in uri_spec()) {
        let (s, want, span) = build_uri(&u);
        check_rewrite(&s, &want, span)?;
        // The generic URL functions agree with libpq's reading.
        match want.get("dbname").filter(|d| !d.is_empty()).map(|d| String::from_utf8(d.clone())) {
            Some(Ok(d)) => {
                prop_assert_eq!(url_get_db(&s).unwrap(), Some(d));
                let out = url_set_db(&s, "new db").unwrap();
                prop_assert_eq!(url_get_db(&out).unwrap(), Some("new db".to_owned()));
                prop_assert_eq!(without_db(opts(&out)), without_db(want.clone()));
            }
            Some(Err(_)) => prop_assert!(url_get_db(&s).is_err()),
            None => {
                prop_assert_eq!(url_get_db(&s).unwrap(), None);
                let out = url_set_db(&s, "n").unwrap();
                prop_assert_eq!(url_get_db(&out).unwrap(), Some("n".to_owned()));
            }
        }
        if let Some(pw) = want.get("password").filter(|p| p.len() > 3) {
            let r = redact(&s);
            let enc_pw = enc(pw, u.enc_all);
            prop_assert!(!r.as_bytes().windows(enc_pw.len()).any(|w| w == &enc_pw[..]) || lossy(&s).matches(&*lossy(&enc_pw)).count() > 1);
        }
    }

    #[test]
    fn params_rewrite_properties(items in prop::collection::vec(item(), 0..5), nulls in prop::collection::vec(any::<bool>(), 5), expand in any::<bool>()) {
        let list: Vec<(&[u8], Option<&[u8]>)> = items
            .iter()
            .zip(&nulls)
            .map(|(i, n)| (i.key.as_bytes(), (!n).then_some(i.val.as_slice())))
            .collect();
        if let Ok(Some(out)) = rewrite_params(&list, expand, &jw_env(), &mut jw03) {
            let b: Vec<(&[u8], Option<&[u8]>)> = out.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
            prop_assert_eq!(rewrite_params(&b, expand, &jw_env(), &mut jw03), Ok(None));
            // Only the dbname entries change, plus at most one appended.
            prop_assert!(out.len() == list.len() || out.len() == list.len() + 1);
            for ((k, v), (k2, v2)) in list.iter().zip(&out) {
                prop_assert_eq!(*k, k2.as_slice());
                if *k != b"dbname" {
                    prop_assert_eq!(*v, v2.as_deref());
                }
            }
        }
    }

    #[test]
    fn conninfo_password_is_redacted(items in prop::collection::vec(item(), 0..4), pw in "[a-z]{4,10}", at_i in 0usize..5) {
        let mut items = items;
        let secret = format!("SECRET{pw}");
        let base = Item { key: "password", val: secret.clone().into_bytes(), quoted: false, extra_escapes: false, pre_eq: 0, post_eq: 0, sep: vec![b' '] };
        items.insert(at_i.min(items.len()), base);
        let (s, _) = build_conninfo(&items, 0);
        let r = redact(&s);
        prop_assert!(!r.contains(&secret), "{}", r);
    }

    #[test]
    fn no_panic_on_arbitrary_bytes(s in prop::collection::vec(any::<u8>(), 0..60), t in prop::collection::vec(prop::sample::select(b"postgresql:/@[]:,?&=%'\\ abd".to_vec()), 0..40)) {
        for input in [&s, &t] {
            let env = jw_env().var("PGSERVICE", "x").file("/etc/postgresql-common/pg_service.conf", &String::from_utf8_lossy(input));
            let _ = rewrite_conninfo(input, &env, &mut jw03);
            let _ = rewrite_conninfo(input, &jw_env(), &mut jw03);
            let _ = rewrite_setdb(Some(input), Some(input), &jw_env(), &mut jw03);
            let _ = rewrite_setdb(None, Some(input), &env, &mut jw03);
            let p: Vec<(&[u8], Option<&[u8]>)> = vec![(b"dbname", Some(input)), (input, Some(input)), (b"user", None)];
            let _ = rewrite_params(&p, true, &jw_env(), &mut jw03);
            let _ = rewrite_params(&p, false, &env, &mut jw03);
            let _ = url_get_db(input);
            let _ = url_set_db(input, "x y");
            let _ = parse_options(input);
            let _ = redact(input);
            let mut prefixed = b"postgresql://".to_vec();
            prefixed.extend_from_slice(input);
            let _ = rewrite_conninfo(&prefixed, &jw_env(), &mut jw03);
            let _ = url_set_db(&prefixed, "x");
            let _ = redact(&prefixed);
        }
    }
}
