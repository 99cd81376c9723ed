"""Issue 12: every way a MariaDB connection can change its database is rerouted or refused.

Each statement below landed in the shared base database from a rerouted connection, with no log
line. A C program linked with -lmariadb (tests/c/mysql_use.c) sends it through one hooked entry
point on a connection without a current database and asks the server `SELECT DATABASE()` on the
same connection: a statement dagz can rewrite exactly lands in the worker database; one it cannot
fails with a `dagz:` error and leaves the connection where it was (no database). Meanwhile a
watcher polls the server's processlist for sessions in the base. PyMySQL (pure Python, hooked in
`dagz.integ._pyhooks`) follows the same rule through `dagz_mysql_rewrite_statement`. The policy
findings (a template without `{worker}`, MariaDB's 64-character limit) are checked here too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import MySQLdb
import pytest
from plugin_support import run_inline_project

from support import REPO_ROOT, RUN_PREFIX, VENV_PYTHON, WORKER3, Launcher, Result, unique_name

C_SOURCE = REPO_ROOT / "tests" / "c" / "mysql_use.c"
MY_KW = "host='127.0.0.1', port=3306, user='root', password='', charset='utf8mb4'"


def admin() -> MySQLdb.connections.Connection:
    return MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="", charset="utf8mb4")


def _drop(names: list[str]) -> None:
    conn = admin()
    try:
        for name in names:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture
def base() -> Iterator[str]:
    """A fresh base and its worker-3 copy on MariaDB, both dropped afterwards."""
    name = unique_name("use")
    _drop([name, f"{name}_jw03"])
    conn = admin()
    try:
        for db in (name, f"{name}_jw03"):
            conn.cursor().execute(f"CREATE DATABASE `{db}`")
    finally:
        conn.close()
    try:
        yield name
    finally:
        _drop([name, f"{name}_jw03"])


@pytest.fixture(scope="module")
def mysql_use(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or pytest.fail("no gcc on PATH", pytrace=False)
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libmariadb"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    out = tmp_path_factory.mktemp("myuse") / "mysql_use"
    cmd = [gcc, "-O1", "-Wall", "-Werror", "-o", str(out), str(C_SOURCE), *flags]
    build = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if build.returncode != 0:
        pytest.fail(f"compiling {C_SOURCE} failed:\n{build.stderr}", pytrace=False)
    return out


def _watch(db: str, stop: threading.Event, seen: list[str]) -> None:
    conn = admin()
    cur = conn.cursor()
    while not stop.is_set():
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s", (db,))
        seen.extend(str(r[0]) for r in cur.fetchall())
        time.sleep(0.002)
    conn.close()


def run_watched(
    launcher: Launcher, argv: list[str], db: str, connect_db: str | None = None
) -> tuple[Result, list[str]]:
    """Runs the child (shim preloaded, worker 3; connected to `connect_db`, default none) while
    polling for sessions in `db`."""
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_watch, args=(db, stop, seen))
    watcher.start()
    env = {**WORKER3, **({"DZ_CONNECT_DB": connect_db} if connect_db else {})}
    try:
        result = launcher.run(argv, env)
    finally:
        stop.set()
        watcher.join()
    return result, seen


# (finding, entry point, statement with {db} for the base; "\0" = a NUL byte, length or None)
REWRITTEN = [
    ("comment_before_use", "query", "/* c */ USE {db}", None),
    ("dash_comment_after_name", "query", "USE {db} -- x", None),
    ("hash_comment_after_name", "query", "USE {db} # x", None),
    (
        "sqlcommenter_comment_after_name",
        "query",
        "USE {db}/*controller='index',framework='django%3A4.2'*/",
        None,
    ),
    ("comment_between_use_and_name", "query", "USE /* c */ {db}", None),
    ("two_trailing_semicolons", "query", "USE {db};;", None),
    ("embedded_nul_within_length", "real_query", "USE {db}\\0garbage", "with-nul"),
    ("length_minus_one_is_strlen", "real_query", "USE {db}", "-1"),
    ("send_query_with_comments", "send_query", "/* c */ USE {db} -- x", None),
    ("stmt_prepare_use", "stmt_prepare", "USE {db}", None),
]

REFUSED = [
    ("execute_immediate_use", "query", "EXECUTE IMMEDIATE 'USE {db}'"),
    ("prepare_from_use", "multi", "PREPARE s FROM 'USE {db}'; EXECUTE s"),
    ("use_then_select_multi_statement", "multi", "USE {db}; SELECT 1"),
    ("select_then_use_multi_statement", "multi", "SELECT 1; USE {db}"),
    ("prepare_from_variable", "multi", "SET @q = 'USE {db}'; PREPARE s FROM @q; EXECUTE s"),
    ("use_in_executable_comment", "query", "/*!USE {db}*/"),
    ("execute_immediate_real_query", "real_query", "EXECUTE IMMEDIATE 'USE {db}'"),
]


@pytest.mark.parametrize(
    ("mode", "stmt", "length"), [pytest.param(*c[1:], id=c[0]) for c in REWRITTEN]
)
def test_use_is_rewritten(
    launcher: Launcher, mysql_use: Path, base: str, mode: str, stmt: str, length: str | None
) -> None:
    text = stmt.format(db=base)
    extra = []
    if length == "with-nul":  # the statement and its first NUL byte, as in the issue
        extra = [str(len(text.split("\\0")[0]) + 1)]
    elif length is not None:
        extra = [length]
    result, seen = run_watched(launcher, [str(mysql_use), mode, text, *extra], base)
    assert result.rc == 0, result.describe()
    assert result.kv().get("rc") == "0", result.describe()
    assert result.kv().get("db") == f"{base}_jw03", result.describe()
    assert seen == [], f"sessions seen in the base {base}: {seen}"


@pytest.mark.parametrize(("mode", "stmt"), [pytest.param(*c[1:], id=c[0]) for c in REFUSED])
def test_statement_that_would_switch_to_the_base_is_refused(
    launcher: Launcher, mysql_use: Path, base: str, mode: str, stmt: str
) -> None:
    result, seen = run_watched(launcher, [str(mysql_use), mode, stmt.format(db=base)], base)
    assert result.rc == 0, result.describe()
    out = result.kv()
    assert out.get("rc") != "0", result.describe()
    assert out.get("error", "").startswith("dagz:"), result.describe()
    named = base in out["error"] and f"{base}_jw03" in out["error"]
    assert named or "cannot tell" in out["error"], result.describe()
    assert out.get("db") == "NULL", result.describe()  # the connection did not move
    assert seen == [], f"sessions seen in the base {base}: {seen}"


@pytest.mark.parametrize(
    ("mode", "stmt", "db"),
    [
        pytest.param("query", "SELECT 'USE {db}'", "NULL", id="use_in_string_literal"),
        pytest.param("query", "/* USE {db} */ SELECT 1", "NULL", id="use_in_comment"),
        pytest.param("multi", "USE mysql; SELECT 1", "mysql", id="multi_statement_kept_db"),
        pytest.param(
            "query", "EXECUTE IMMEDIATE 'SELECT 1'", "NULL", id="execute_immediate_select"
        ),
    ],
)
def test_statement_that_cannot_reach_the_base_passes_unchanged(
    launcher: Launcher, mysql_use: Path, base: str, mode: str, stmt: str, db: str
) -> None:
    result, seen = run_watched(launcher, [str(mysql_use), mode, stmt.format(db=base)], base)
    assert result.rc == 0, result.describe()
    assert result.kv().get("rc") == "0", result.describe()
    assert result.kv().get("db") == db, result.describe()
    assert seen == []


# --- stored routines ---------------------------------------------------------------------------
# On MariaDB (checked on 10.11) a procedure may run `EXECUTE IMMEDIATE 'USE x'` or
# `PREPARE s FROM 'USE x'`, and the caller's current database is x after CALL returns when the
# procedure lives in the caller's current database (the server restores the caller's database
# only when it switched to the procedure's on entry). dagz refuses the CREATE through a rerouted
# connection, and before a CALL reads the body of each procedure it names (hooks_mysql_call).

SWITCHING_ROUTINES = [
    ("execute_immediate", "EXECUTE IMMEDIATE 'USE {db}'"),
    ("prepare_literal", "PREPARE s FROM 'USE {db}'; EXECUTE s"),
    ("prepare_variable", "SET @q = CONCAT('USE ', '{db}'); PREPARE s FROM @q; EXECUTE s"),
]


def _routines(db: str) -> list[str]:
    conn = admin()
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT CONCAT(ROUTINE_SCHEMA, '.', ROUTINE_NAME) FROM information_schema.ROUTINES"
            " WHERE ROUTINE_SCHEMA IN (%s, %s)",
            (db, f"{db}_jw03"),
        )
        return [str(r[0]) for r in cur.fetchall()]
    finally:
        conn.close()


@pytest.mark.parametrize("body", [pytest.param(c[1], id=c[0]) for c in SWITCHING_ROUTINES])
def test_routine_that_switches_database_cannot_be_created_through_a_rerouted_connection(
    launcher: Launcher, mysql_use: Path, base: str, body: str
) -> None:
    stmt = f"CREATE PROCEDURE dz_switch() BEGIN {body.format(db=base)}; END"
    result, seen = run_watched(launcher, [str(mysql_use), "query", stmt], base, connect_db=base)
    assert result.rc == 0, result.describe()
    out = result.kv()
    assert out.get("rc") != "0", result.describe()
    assert out.get("error", "").startswith("dagz:"), result.describe()
    assert out.get("db") == f"{base}_jw03", result.describe()
    assert _routines(base) == []
    assert seen == [], f"sessions seen in the base {base}: {seen}"


def _admin_run(*statements: str) -> None:
    conn = admin()
    try:
        for statement in statements:
            conn.cursor().execute(statement)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "call",
    [
        pytest.param("CALL dz_switch()", id="direct"),
        pytest.param("CALL dz_outer()", id="nested"),
        pytest.param("SELECT 1; CALL dz_switch()", id="after_another_statement"),
    ],
)
def test_call_of_a_routine_that_switches_database_is_refused(
    launcher: Launcher, mysql_use: Path, base: str, call: str
) -> None:
    """The procedure exists in the worker database (as a clone of a base that has it makes it):
    before, CALL left the rerouted connection in the base (SELECT DATABASE() = the base)."""
    worker = f"{base}_jw03"
    _admin_run(
        f"CREATE PROCEDURE `{worker}`.dz_switch() EXECUTE IMMEDIATE 'USE `{base}`'",
        f"CREATE PROCEDURE `{worker}`.dz_outer() CALL dz_switch()",
    )
    result, seen = run_watched(launcher, [str(mysql_use), "multi", call], base, connect_db=base)
    assert result.rc == 0, result.describe()
    out = result.kv()
    assert out.get("rc") != "0", result.describe()
    assert out.get("error", "").startswith("dagz:"), result.describe()
    assert "CALL" in out["error"], result.describe()
    assert out.get("db") == worker, result.describe()
    assert seen == [], f"sessions seen in the base {base}: {seen}"


def test_call_of_a_harmless_routine_or_one_of_another_database_passes(
    launcher: Launcher, mysql_use: Path, base: str
) -> None:
    """A procedure without dynamic SQL runs; one of another database that switches runs too: the
    server switches back to the caller's database after it (checked: DATABASE() afterwards)."""
    worker, other = f"{base}_jw03", unique_name("other")
    _drop([other])
    _admin_run(
        f"CREATE PROCEDURE `{worker}`.dz_ok() SELECT 1",
        f"CREATE DATABASE `{other}`",
        f"CREATE PROCEDURE `{other}`.dz_switch() EXECUTE IMMEDIATE 'USE `{other}`'",
    )
    try:
        for call in ("CALL dz_ok()", f"CALL `{other}`.dz_switch()"):
            result, seen = run_watched(
                launcher, [str(mysql_use), "multi", call], base, connect_db=base
            )
            assert result.rc == 0, result.describe()
            assert result.kv().get("rc") == "0", result.describe()
            assert result.kv().get("db") == worker, result.describe()
            assert seen == []
    finally:
        _drop([other])


# --- PyMySQL: the same rule in the Python hook -------------------------------------------------

PY_CONFTEST = """
import os
from dagz.integ.pymysql import MYSQL_CONFIG

MYSQL_CONFIG.configure(
    MYSQL_CONFIG.default_rewrite_db_name,
    MYSQL_CONFIG.default_should_reroute,
    None,
    worker_init=MYSQL_CONFIG.create_worker_init(
        [os.environ["DZ_DB"]], host="127.0.0.1", user="root"
    ),
)
"""

PY_TESTS = """
import json, os
import pymysql
from pymysql.constants import CLIENT

DB = os.environ["DZ_DB"]


def record(**kw):
    from dagz import _shim
    kw["worker"] = _shim.worker()[0]  # the worker number the shim and the plugin use
    with open(os.environ["DZ_OUT"], "a") as fh:
        fh.write(json.dumps(kw) + "\\n")


def test_statements():
    for case, stmt in json.loads(os.environ["DZ_CASES"]):
        conn = pymysql.connect(host="127.0.0.1", user="root", password="",
                               client_flag=CLIENT.MULTI_STATEMENTS)
        error = None
        try:
            with conn.cursor() as cur:
                cur.execute(stmt.format(db=DB).replace("\\\\0", "\\0"))
                while cur.nextset():
                    pass
        except Exception as exc:
            error = type(exc).__name__ + ": " + str(exc)
        with conn.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            record(case=case, db=cur.fetchone()[0], error=error)
        conn.close()


def test_calls():
    for case, stmt in json.loads(os.environ.get("DZ_CALLS", "[]")):
        conn = pymysql.connect(host="127.0.0.1", user="root", password="", database=DB)
        error = None
        try:
            with conn.cursor() as cur:
                cur.execute(stmt)
                while cur.nextset():
                    pass
        except Exception as exc:
            error = type(exc).__name__ + ": " + str(exc)
        with conn.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            record(case=case, db=cur.fetchone()[0], error=error)
        conn.close()


def test_connect():
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database=DB)
    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        record(case="connect", db=cur.fetchone()[0], error=None)
    conn.close()
"""


def _run_pymysql(
    launcher: Launcher,
    tmp_path: Path,
    db: str,
    cases: list[tuple[str, str]],
    setup: tuple[str, ...] = (),
    calls: tuple[tuple[str, str], ...] = (),
) -> tuple[int, str, list[dict[str, Any]], int]:
    """Runs PY_TESTS on 2 dagz workers against the base `db` (created here, then `setup` run in
    it; `calls` for test_calls); every database of its name is dropped afterwards. (rc, output,
    events, tables left in the base)."""
    names = [db, *(f"{db}_jw{n:02}" for n in range(4))]
    _drop(names)
    conn = admin()
    try:
        conn.cursor().execute(f"CREATE DATABASE `{db}`")
        conn.select_db(db)
        for statement in setup:
            conn.cursor().execute(statement)
    finally:
        conn.close()
    try:
        rc, output, events = run_inline_project(
            tmp_path,
            {"conftest.py": PY_CONFTEST, "test_stmts.py": PY_TESTS},
            "--dagz-workers",
            "2",
            env={
                "DZ_DB": db,
                "DZ_CASES": json.dumps(cases),
                "DZ_CALLS": json.dumps(calls),
                "DAGZ_SHIM": str(launcher.shim),
            },
            timeout=180,
        )
        server = admin()
        try:
            cur = server.cursor()
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (db,)
            )
            base_tables = cur.fetchone()[0]
        finally:
            server.close()
    finally:
        _drop(names)
    return rc, output, events, base_tables


def test_pymysql_follows_the_same_statement_rule(launcher: Launcher, tmp_path: Path) -> None:
    db = unique_name("pyuse")
    cases = [(c[0], c[2]) for c in REWRITTEN if c[1] in ("query", "send_query")]
    cases += [(c[0], c[2]) for c in REFUSED if c[1] in ("query", "multi")]
    rc, output, events, base_tables = _run_pymysql(launcher, tmp_path, db, cases)
    assert rc == 0, output
    by_case = {e["case"]: e for e in events}
    assert set(by_case) == {"connect", *(c for c, _ in cases)}, output
    assert by_case["connect"]["db"] == f"{db}_jw{by_case['connect']['worker']:02}", by_case
    for case, _ in cases:
        got = by_case[case]
        worker = f"{db}_jw{got['worker']:02}"
        if case in {c[0] for c in REWRITTEN}:
            assert (got["db"], got["error"]) == (worker, None), (case, got)
        else:
            assert got["db"] is None, (case, got)
            assert got["error"], (case, got)
            assert "dagz:" in got["error"], (case, got)
    assert base_tables == 0


def test_pymysql_refuses_a_call_of_a_routine_that_switches_database(
    launcher: Launcher, tmp_path: Path
) -> None:
    """The base has the procedures, so each worker's copy has them (the clone copies routines).
    Before: PyMySQL's CALL dz_switch() left the connection in the base."""
    db = unique_name("pycall")
    setup = (
        f"CREATE PROCEDURE dz_switch() EXECUTE IMMEDIATE 'USE `{db}`'",
        "CREATE PROCEDURE dz_outer() CALL dz_switch()",
        "CREATE PROCEDURE dz_ok() SELECT 1",
    )
    calls = (
        ("call_switch", "CALL dz_switch()"),
        ("call_nested", "CALL dz_outer()"),
        ("call_ok", "CALL dz_ok()"),
    )
    rc, output, events, _ = _run_pymysql(launcher, tmp_path, db, [], setup, calls)
    assert rc == 0, output
    by_case = {e["case"]: e for e in events}
    for case, _ in calls:
        got = by_case[case]
        assert got["db"] == f"{db}_jw{got['worker']:02}", (case, got)
        if case == "call_ok":
            assert got["error"] is None, (case, got)
        else:
            assert "dagz:" in (got["error"] or ""), (case, got)


# --- policy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["{db}", "{db}_{worker_count}"])
def test_template_without_worker_is_rejected(
    launcher: Launcher, base: str, tmp_path: Path, template: str
) -> None:
    """Issue 12: such a template sends every worker to one database: refused at policy load,
    naming the file, the line and the key; no session reaches any database of the base."""
    policy = tmp_path / "policy.toml"
    policy.write_text(f'# workers\n[mysql]\ntemplate = "{template}"\n')
    code = f"""
import MySQLdb
try:
    MySQLdb.connect({MY_KW}, db={base!r})
    print("connect=connected")
except MySQLdb.OperationalError as exc:
    print("connect=" + " ".join(str(exc).split()))
"""
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_watch, args=(base, stop, seen))
    watcher.start()
    try:
        result = launcher.python(VENV_PYTHON, code, {**WORKER3, "DAGZ_POLICY": str(policy)})
    finally:
        stop.set()
        watcher.join()
    assert result.rc == 0, result.describe()
    text = result.kv()["connect"]
    for part in ("dagz:", str(policy), "line 3", "template", "{worker}"):
        assert part in text, text
    assert seen == []


def test_a_mariadb_name_of_35_characters_and_65_bytes_is_accepted(
    launcher: Launcher, tmp_path: Path
) -> None:
    """Issue 12: MariaDB's limit is 64 characters. `<prefix>_` + 15 three-byte characters + 5
    hex = 30 characters / 60 bytes; its worker copy (+ `_jw03`) is 35 characters / 65 bytes.
    The C hooks (Rust policy) and the Python plugin (config._checked_name) both accept it."""
    db = f"{RUN_PREFIX}_{'名' * 15}{uuid.uuid4().hex[:5]}"
    worker = f"{db}_jw03"
    assert (len(worker), len(worker.encode())) == (35, 65)
    _drop([db, worker])
    conn = admin()
    try:
        for name in (db, worker):
            conn.cursor().execute(f"CREATE DATABASE `{name}`")
    finally:
        conn.close()
    try:
        code = f"""
import MySQLdb
c = MySQLdb.connect({MY_KW}, db={db!r})
cur = c.cursor(); cur.execute("SELECT DATABASE()"); print("landed=" + cur.fetchone()[0])
"""
        result = launcher.python(VENV_PYTHON, code, WORKER3)
        assert result.rc == 0, result.describe()
        assert result.kv()["landed"] == worker, result.describe()
    finally:
        _drop([db, worker])
    # The plugin's Python decision on a PyMySQL connect (worker_init copies the base).
    rc, output, events, _ = _run_pymysql(launcher, tmp_path, db, [])
    assert rc == 0, output
    (connect,) = [e for e in events if e["case"] == "connect"]
    assert connect["db"] == f"{db}_jw{connect['worker']:02}", output
