"""MySQL/MariaDB rerouting through the client library (issue 3), checked with SELECT DATABASE()
on the real server: mysqlclient, SQLAlchemy over mysqlclient, and a C program linked with
-lmariadb through every hooked function, including the non-blocking API."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import MySQLdb
import pytest

from support import APP, APP_JW03, REPO_ROOT, VENV_PYTHON, WORKER3, Launcher, unique_name

MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
MY_KW = "host='127.0.0.1', port=3306, user='root', password=''"
C_SOURCE = REPO_ROOT / "tests" / "c" / "mysql_entrypoints.c"


def admin() -> MySQLdb.connections.Connection:
    return MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="")


@pytest.fixture(scope="module")
def my_databases() -> None:
    """The run's APP and APP_JW03 exist on MariaDB (created if missing; other workers use them
    too, so they are dropped at the end of the run, by conftest's pytest_sessionfinish)."""
    conn = admin()
    cur = conn.cursor()
    for name in (APP, APP_JW03):
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
    conn.close()


@pytest.fixture(scope="module")
def my_entrypoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc") or pytest.fail("no gcc on PATH", pytrace=False)
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libmariadb"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    out = tmp_path_factory.mktemp("mybin") / "mysql_entrypoints"
    cmd = [gcc, "-O1", "-Wall", "-Werror", "-o", str(out), str(C_SOURCE), *flags, "-lpthread"]
    build = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if build.returncode != 0:
        pytest.fail(f"compiling {C_SOURCE} failed:\n{build.stderr}", pytrace=False)
    return out


PRELUDE = f"""
import MySQLdb
def dbname(conn):
    cur = conn.cursor(); cur.execute("SELECT DATABASE()"); return cur.fetchone()[0]
def connect(**kw):
    return MySQLdb.connect({MY_KW}, **kw)
"""


def run_py(launcher: Launcher, code: str, env: dict[str, str] | None = None) -> dict[str, str]:
    result = launcher.python(VENV_PYTHON, PRELUDE + code, {**WORKER3, **(env or {})})
    assert result.rc == 0, result.describe()
    return result.kv()


@pytest.mark.usefixtures("my_databases")
def test_mysqlclient_every_entry_point(launcher: Launcher) -> None:
    code = f"""
c = connect(db="{APP}"); print("db_kw=" + dbname(c))
c2 = connect(database="{APP}"); print("database_kw=" + dbname(c2))
c2.select_db("mysql"); c2.select_db("{APP}"); print("select_db=" + dbname(c2))
cur = c.cursor()
cur.execute("USE mysql"); print("use_mysql=" + dbname(c))
cur.execute("USE {APP}"); print("use_app=" + dbname(c))
cur.execute("  use `{APP}` ; "); print("use_quoted=" + dbname(c))
cur.execute("SELECT 'USE {APP}'"); print("literal=" + cur.fetchone()[0])
print("after_literal=" + dbname(c))
"""
    assert run_py(launcher, code) == {
        "db_kw": APP_JW03,
        "database_kw": APP_JW03,
        "select_db": APP_JW03,
        "use_mysql": "mysql",
        "use_app": APP_JW03,
        "use_quoted": APP_JW03,
        "literal": f"USE {APP}",
        "after_literal": APP_JW03,
    }


@pytest.mark.usefixtures("my_databases")
def test_mysqlclient_change_user(launcher: Launcher) -> None:
    """mysqlclient's low-level connection exposes mysql_change_user as change_user()."""
    code = f"""
from MySQLdb import _mysql
c = _mysql.connect(host="127.0.0.1", port=3306, user="root", password="")
c.change_user("root", "", "{APP}")
c.query("SELECT DATABASE()")
print("change_user=" + c.store_result().fetch_row()[0][0].decode())
"""
    assert run_py(launcher, code) == {"change_user": APP_JW03}


@pytest.mark.usefixtures("my_databases")
def test_sqlalchemy_mysqldb(launcher: Launcher) -> None:
    code = f"""
import sqlalchemy as sa
e = sa.create_engine("mysql+mysqldb://root:@127.0.0.1:3306/{APP}")
with e.connect() as c:
    print("sqlalchemy=" + c.execute(sa.text("SELECT DATABASE()")).scalar())
"""
    assert run_py(launcher, code) == {"sqlalchemy": APP_JW03}


MODES = [
    "connect",
    "select_db",
    "change_user",
    "query",
    "real_query",
    "send_query",
    "connect_start",
    "select_db_start",
    "change_user_start",
]


@pytest.mark.usefixtures("my_databases")
@pytest.mark.parametrize("mode", MODES)
def test_c_program_entry_point(launcher: Launcher, my_entrypoints: Path, mode: str) -> None:
    result = launcher.run([str(my_entrypoints), mode, APP], WORKER3)
    assert result.rc == 0, result.describe()
    assert result.stdout.strip() == f"{mode} {APP_JW03}", result.describe()
    control = launcher.run([str(my_entrypoints), mode, APP], WORKER3, preload=False)
    assert control.stdout.strip() == f"{mode} {APP}", control.describe()


@pytest.mark.usefixtures("my_databases")
@pytest.mark.parametrize("mode", ["connect", "select_db", "query"])
def test_c_program_system_database_untouched(
    launcher: Launcher, my_entrypoints: Path, mode: str
) -> None:
    result = launcher.run([str(my_entrypoints), mode, "mysql"], WORKER3)
    assert result.stdout.strip() == f"{mode} mysql", result.describe()


@pytest.mark.usefixtures("my_databases")
def test_eight_threads_half_in_bypass(launcher: Launcher, my_entrypoints: Path) -> None:
    for _ in range(3):
        result = launcher.run([str(my_entrypoints), "threads", APP], WORKER3)
        assert result.rc == 0, result.describe()
        lines = sorted(result.stdout.split("\n"))
        landed = dict(line.split(" ", 1) for line in lines if line)
        assert len(landed) == 8, result.describe()
        for label, db in landed.items():
            assert db == (APP if label.endswith("bypass") else APP_JW03), result.describe()


@pytest.fixture
def refuse_db() -> Iterator[str]:
    name = unique_name("refuse")
    conn = admin()
    try:
        conn.cursor().execute(f"CREATE DATABASE `{name}`")
        yield name
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def _watch_processlist(db: str, stop: threading.Event, seen: list[str]) -> None:
    conn = admin()
    cur = conn.cursor()
    while not stop.is_set():
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s", (db,))
        seen.extend(str(r[0]) for r in cur.fetchall())
        time.sleep(0.005)
    conn.close()


@pytest.mark.parametrize("breakage", ["policy", "worker", "long_name"])
def test_refusal_fails_closed(
    launcher: Launcher, refuse_db: str, tmp_path: Path, breakage: str
) -> None:
    env = dict(WORKER3)
    if breakage == "policy":
        bad = tmp_path / "broken.toml"
        bad.write_text("[mysql]\ntempalte = 3\n")
        env["DAGZ_POLICY"] = str(bad)
    elif breakage == "worker":
        env["DAGZ_WORKER"] = "abc"
    else:
        pol = tmp_path / "long.toml"
        pol.write_text('[mysql]\ntemplate = "{db}_' + "x" * 60 + '{worker}"\n')
        env["DAGZ_POLICY"] = str(pol)
    code = f"""
import time
for how in ("connect", "select_db", "use"):
    try:
        if how == "connect":
            connect(db={refuse_db!r})
        elif how == "select_db":
            c = connect(); c.select_db({refuse_db!r})
        else:
            c = connect(); c.cursor().execute("USE {refuse_db}")
        print(how + "=connected")
    except MySQLdb.OperationalError as exc:
        print(how + "=" + type(exc).__name__ + ":" + " ".join(str(exc).split()))
    time.sleep(0.2)
"""
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_watch_processlist, args=(refuse_db, stop, seen))
    watcher.start()
    try:
        result = launcher.python(VENV_PYTHON, PRELUDE + code, env)
    finally:
        stop.set()
        watcher.join()
    assert result.rc == 0, result.describe()
    out = result.kv()
    assert set(out) == {"connect", "select_db", "use"}, result.describe()
    for how, text in out.items():
        assert text.startswith("OperationalError:"), (how, result.describe())
        assert "dagz:" in text, (how, result.describe())
    assert seen == [], f"sessions seen in {refuse_db}: {seen}"
    if breakage == "policy":
        assert "broken.toml" in out["connect"], result.describe()
        assert "tempalte" in out["connect"], result.describe()
