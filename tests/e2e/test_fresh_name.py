"""Issue 12, "a database that still cannot be rebuilt gets a fresh name rather than failing the
worker": a killed test left a prepared XA transaction on a table of MariaDB worker database
``<base>_jw00`` (dagz may not roll it back: ``XA RECOVER`` does not say which database it
touches), so the next run's rebuild fails on its locks. Before, every test of that worker failed
(``worker_init`` raised). Now the worker provisions ``<base>_jw00_f1``, reroutes its own connects
and — through ``DAGZ_RENAME`` and the shim's policy — its children's there, leaves the blocked
copy alone and names it in the summary; ``dagz db list/drop`` know the fresh name's shape.

Real pytest runs of a small project of the test's own; landing proven server side (rows the
inner test and its child wrote, read from each database); the XA transaction is rolled back and
every database dropped at the end.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from dagz import _shim, envvars, fresh, lease
from dagz.config import MYSQL_CONFIG
from dagz.engines import mysql as _mysql
from dagz.engines import postgres as _pg
from dagz.engines.base import Outcome
from dagz.errors import EngineError
from db_fixtures import MY, PG, run_sql
from plugin_support import child_env, run_inline_project

from support import VENV_PYTHON, unique_name


@pytest.fixture(scope="session", autouse=True)
def pg_databases() -> tuple[str, ...]:
    """Overrides conftest's autouse fixture: these tests use databases of their own only."""
    return ()


CONFTEST = """
import os

from dagz.engines.mysql import batch
from dagz.integ.mysqlclient import MYSQL_CONFIG, create_worker_init

batch.LOCK_WAIT_SECONDS = 2  # the blocked rebuild gives up after 2 s instead of 10
DB = os.environ["DZ_DB"]
MY_KW = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
MYSQL_CONFIG.configure(
    MYSQL_CONFIG.default_rewrite_db_name,
    MYSQL_CONFIG.default_should_reroute,
    lambda db: MYSQL_CONFIG.truncate(db, **MY_KW),
    worker_init=create_worker_init([DB], **MY_KW),
)
"""

#: The inner test: its own connect and a plain Python child's (no dagz in it: the shim routes it
#: by the policy alone) each insert a row and say where they are.
TEST = """
import json
import os
import subprocess
import sys

import MySQLdb

DB = os.environ["DZ_DB"]
CHILD = '''
import os, sys
import MySQLdb
conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", passwd="", db=os.environ["DZ_DB"])
cur = conn.cursor()
cur.execute("INSERT INTO items VALUES (%s, 'child')", (int(sys.argv[1]),))
conn.commit()
cur.execute("SELECT DATABASE()")
print(cur.fetchone()[0])
'''


def test_lands() -> None:
    from dagz.integ.mysqlclient import MYSQL_CONFIG

    # First, before any connect (worker_init runs inside): the name for manual setup.
    manual = MYSQL_CONFIG.get_manual_init_db_name(DB) if MYSQL_CONFIG.configured else None
    conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", passwd="", db=DB)
    cur = conn.cursor()
    cur.execute("INSERT INTO items VALUES (10, 'parent')")
    conn.commit()
    cur.execute("SELECT DATABASE()")
    parent = cur.fetchone()[0]
    assert "dagz" not in sys.modules.get("MySQLdb").__file__
    child = subprocess.run(
        [sys.executable, "-c", CHILD, "11"], capture_output=True, text=True, check=True
    )
    with open(os.environ["DZ_OUT"], "a") as out:
        out.write(json.dumps({"parent": parent, "child": child.stdout.strip(), "manual": manual,
                              "rename": os.environ.get("DAGZ_RENAME")}) + "\\n")
"""


def _my(db: str | None, *statements: str) -> list[tuple[Any, ...]]:
    return run_sql(_mysql, db, MY, *statements)


def _xa_ids() -> list[str]:
    rows = _my(None, "XA RECOVER")
    return [r[3].decode() if isinstance(r[3], bytes) else str(r[3]) for r in rows]


def _databases(base: str) -> list[str]:
    rows = _my(None, f"SHOW DATABASES LIKE '{base.replace('_', chr(92) + '_')}%'")
    return sorted(str(r[0]) for r in rows)


#: The XA ids the tests left (rolled back at the end if still there).
_XIDS: list[str] = []


@pytest.fixture
def blocked_base() -> Iterator[str]:
    """A base with a table and a row; every XA transaction the test left rolled back and every
    database of the base's name dropped after."""
    base = unique_name("fr")
    _my(None, f"CREATE DATABASE `{base}`")
    try:
        _my(
            base,
            "CREATE TABLE items (id int PRIMARY KEY, label text)",
            "INSERT INTO items VALUES (1, 'one')",
        )
        yield base
    finally:
        for x in set(_XIDS) & set(_xa_ids()):
            _my(None, f"XA ROLLBACK '{x}'")
        for name in _databases(base):
            _mysql.drop(name, **MY)
        assert _databases(base) == []


def _run(
    tmp_path: Path, tag: str, env: dict[str, str], files: dict[str, str] | None = None
) -> tuple[int, str, list[dict[str, Any]]]:
    """One inner run on one worker (``files``: the MariaDB project by default)."""
    (tmp_path / tag).mkdir()
    files = {"conftest.py": CONFTEST, "test_it.py": TEST} if files is None else files
    args = ("--dagz-workers", "1")
    return run_inline_project(tmp_path / tag, files, *args, env=env, timeout=180)


def _leave_xa(db: str) -> str:
    xid = unique_name("xa")
    _XIDS.append(xid)
    _my(
        db,
        f"XA START '{xid}'",
        "INSERT INTO items VALUES (9, 'prepared')",
        f"XA END '{xid}'",
        f"XA PREPARE '{xid}'",
    )
    return xid


def _cli(*args: str) -> str:
    proc = subprocess.run(
        [str(VENV_PYTHON.parent / "dagz"), "db", *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_worker_database_blocked_by_prepared_xa_gets_a_fresh_name(
    tmp_path: Path, blocked_base: str
) -> None:
    base = blocked_base
    rc, out, events = _run(tmp_path, "one", {"DZ_DB": base})
    assert rc == 0, out
    old = f"{base}_jw00"
    assert events == [{"parent": old, "child": old, "manual": old, "rename": None}], out
    _my(old, "DELETE FROM items WHERE id >= 10")
    xid = _leave_xa(old)  # what a killed test left
    _my(base, "INSERT INTO items VALUES (2, 'two')")  # the next run must rebuild

    rc, out, events = _run(tmp_path, "two", {"DZ_DB": base})

    fresh = f"{old}_f1"
    assert rc == 0, out
    assert events == [
        {"parent": fresh, "child": fresh, "manual": fresh, "rename": f"mysql:{base}={fresh}"}
    ], out
    # Server side: the rows of the test and of its child are in the fresh copy (a copy of the
    # base's rows; no `prepare`: the test took the name by get_manual_init_db_name), not in the
    # old one.
    assert _my(fresh, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (10,), (11,)]
    assert _my(old, "SELECT id FROM items WHERE id >= 10") == []
    with pymysql.connect(**MY) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{old}'")
        assert cur.fetchone()[0] == 1  # the blocked copy is still there, left alone
    assert xid in _xa_ids()  # not rolled back by dagz
    summary = " ".join(out.split())
    assert f"{old} could not be rebuilt and was left alone; this run used {fresh}" in summary, out
    assert f"XA ROLLBACK '{xid}'" in summary, out
    drop = f"dagz db drop --engine mysql --host 127.0.0.1 --port 3306 --user root --base {base}"
    assert drop in summary, out

    # A later run while the blocker stays: the same fresh copy, kept by the warm start.
    rc, out, events = _run(tmp_path, "three", {"DZ_DB": base})
    assert rc == 0, out
    assert events == [
        {"parent": fresh, "child": fresh, "manual": fresh, "rename": f"mysql:{base}={fresh}"}
    ], out
    assert f"worker 0: {fresh} kept" in out, out
    # `dagz db list` knows the fresh copy as dagz's.
    listed = _cli("list", "--engine", "mysql")
    assert fresh in listed, listed
    assert old in listed, listed
    # Once the blocker is gone, the usual name is rebuilt and used again.
    _my(None, f"XA ROLLBACK '{xid}'")
    rc, out, events = _run(tmp_path, "four", {"DZ_DB": base})
    assert rc == 0, out
    assert events == [{"parent": old, "child": old, "manual": old, "rename": None}], out
    assert _my(old, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (10,), (11,)]
    _cli("drop", "--engine", "mysql", "--base", base)  # both copies
    assert _databases(base) == [base]


def test_auto_mode_worker_database_blocked_by_prepared_xa_gets_a_fresh_name(
    tmp_path: Path, blocked_base: str
) -> None:
    """The same in auto mode (no conftest): the copy built on the first connect."""
    base = blocked_base
    files = {"test_it.py": TEST}
    env = {"DZ_DB": base}
    old, fresh = f"{base}_jw00", f"{base}_jw00_f1"
    rc, out, events = _run(tmp_path, "one", env, files)
    assert rc == 0, out
    assert events == [{"parent": old, "child": old, "manual": None, "rename": None}], out
    _my(old, "DELETE FROM items WHERE id >= 10")
    _leave_xa(old)
    _my(base, "INSERT INTO items VALUES (2, 'two')")  # the next run must rebuild

    rc, out, events = _run(tmp_path, "two", env, files)

    assert rc == 0, out
    assert events == [
        {"parent": fresh, "child": fresh, "manual": None, "rename": f"mysql:{base}={fresh}"}
    ], out
    assert _my(fresh, "SELECT id FROM items ORDER BY id") == [(1,), (2,), (10,), (11,)]
    assert _my(old, "SELECT id FROM items WHERE id >= 10") == []
    assert f"{old} could not be rebuilt and was left alone" in " ".join(out.split()), out


# --------------------------------------------------------------------------------------------
# PostgreSQL: a logical replication subscription a killed test left in the worker database:
# DROP DATABASE … WITH (FORCE) fails on it ("is being used by logical replication
# subscription"), and dagz may not drop it (PostgreSQL does not either: it may hold a slot on
# another server).

PG_CONFTEST = """
import os

from dagz.integ.psycopg import PG_CONFIG, create_worker_init

DB = os.environ["DZ_DB"]
PG_KW = {"host": "127.0.0.1", "port": int(os.environ["DZ_PG_PORT"]), "user": "postgres"}
PG_CONFIG.configure(
    PG_CONFIG.default_rewrite_db_name,
    PG_CONFIG.default_should_reroute,
    lambda db: PG_CONFIG.truncate(db, **PG_KW),
    worker_init=create_worker_init([DB], **PG_KW),
)
"""

#: The inner test: psycopg and a `psql` child (no dagz callback in it) insert and report.
PG_TEST = """
import json
import os
import subprocess

import psycopg

DB = os.environ["DZ_DB"]
PORT = os.environ["DZ_PG_PORT"]


def test_lands() -> None:
    with psycopg.connect(host="127.0.0.1", port=PORT, user="postgres", dbname=DB) as conn:
        conn.execute("INSERT INTO items VALUES (10, 'parent')")
        parent = conn.execute("SELECT current_database()").fetchone()[0]
    child = subprocess.run(
        ["psql", "-qAt", "-h", "127.0.0.1", "-p", PORT, "-U", "postgres", "-d", DB,
         "-c", "INSERT INTO items VALUES (11, 'child')", "-c", "SELECT current_database()"],
        capture_output=True, text=True, check=True,
    )
    with open(os.environ["DZ_OUT"], "a") as out:
        out.write(json.dumps({"parent": parent, "child": child.stdout.strip(),
                              "rename": os.environ.get("DAGZ_RENAME")}) + "\\n")
"""


def test_pg_worker_database_with_a_subscription_gets_a_fresh_name(tmp_path: Path) -> None:
    kw = dict(PG)
    base = unique_name("fr")
    old, fresh = f"{base}_jw00", f"{base}_jw00_f1"
    sub = unique_name("sub")
    env = {"DZ_DB": base, "DZ_PG_PORT": str(kw["port"])}
    files = {"conftest.py": PG_CONFTEST, "test_it.py": PG_TEST}

    run_sql(_pg, "postgres", kw, f'CREATE DATABASE "{base}"')
    try:
        run_sql(_pg, base, kw, "CREATE TABLE items (id int PRIMARY KEY, label text)")
        rc, out, events = _run(tmp_path, "one", env, files)
        assert rc == 0, out
        assert events == [{"parent": old, "child": old, "rename": None}], out
        run_sql(
            _pg,
            old,
            kw,
            f"CREATE SUBSCRIPTION {sub} CONNECTION 'host=127.0.0.1 dbname={base}'"
            f" PUBLICATION {sub} WITH (connect = false)",
        )
        run_sql(_pg, base, kw, "INSERT INTO items VALUES (2, 'two')")  # the next run rebuilds

        rc, out, events = _run(tmp_path, "two", env, files)

        assert rc == 0, out
        assert events == [{"parent": fresh, "child": fresh, "rename": f"pg:{base}={fresh}"}], out
        assert run_sql(_pg, fresh, kw, "SELECT id FROM items ORDER BY id") == [(10,), (11,)]
        assert run_sql(_pg, old, kw, "SELECT id FROM items WHERE id >= 2") == [(10,), (11,)]
        summary = " ".join(out.split())
        assert f"{old} could not be rebuilt and was left alone; this run used {fresh}" in summary
        assert "is being used by logical replication subscription" in summary, out
        subs = run_sql(_pg, "postgres", kw, "SELECT subname FROM pg_subscription")
        assert (sub,) in subs  # left alone
        listed = _cli("list", "--engine", "pg", "--port", str(kw["port"]))
        assert fresh in listed, listed
    finally:
        if (sub,) in run_sql(_pg, "postgres", kw, "SELECT subname FROM pg_subscription"):
            run_sql(
                _pg,
                old,
                kw,
                f"ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)",
                f"DROP SUBSCRIPTION {sub}",
            )
        for name in (fresh, old, base):
            _pg.drop(name, **kw)


# --------------------------------------------------------------------------------------------
# What is not worked around


def test_a_failure_a_new_copy_has_too_gets_no_fresh_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """`provision_or_fresh` in this process, with a `provision` that fails on the real server
    (``create``: after creating the copy, as a clone that cannot read the base does): a copy
    that is not there after the failure is not "blocked" (no fresh name); when the new ``_f1``
    fails too, that half-built ``_f1`` is dropped and the first error raised — no pile of
    ``_fN`` copies, no rename."""
    monkeypatch.setattr(fresh, "_RENAMED", {})
    monkeypatch.delenv(envvars.RENAME, raising=False)
    base = unique_name("fr")
    target = f"{base}_jw00"
    tried: list[str] = []
    create = False

    def provision(name: str) -> Outcome:
        tried.append(name)
        if create:
            _my(None, f"CREATE DATABASE IF NOT EXISTS `{name}`")
        raise EngineError(f"dagz: cannot copy {base}")

    try:
        with pytest.raises(EngineError, match="cannot copy"):
            fresh.provision_or_fresh(MYSQL_CONFIG, base, target, provision, dict(MY))
        assert tried == [target]  # nothing there: not blocked
        create = True
        with pytest.raises(EngineError, match="cannot copy"):
            fresh.provision_or_fresh(MYSQL_CONFIG, base, target, provision, dict(MY))
        assert tried == [target, target, f"{target}_f1"]
        assert _databases(base) == [target]  # the half-built _f1 dropped
        assert fresh.renamed(_shim.ENGINE_MYSQL, base) is None
    finally:
        for name in _databases(base):
            _mysql.drop(name, **MY)


def test_a_run_started_inside_a_test_forgets_the_outer_workers_fresh_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pytest run started from inside a test of a worker that uses a fresh name inherits
    ``DAGZ_RENAME``; its children would land in the outer run's database. The inner run drops
    it with the outer worker's number (`lease.forget_inherited`, called at plugin start)."""
    monkeypatch.setenv(envvars.WORKER_LEASE, str(os.getppid() or 1))  # another process's
    monkeypatch.setenv(envvars.WORKER, "3")
    monkeypatch.setenv(envvars.RENAME, "mysql:shop=shop_jw03_f1")
    monkeypatch.setattr(lease._LEASES, "exported", False)
    lease.forget_inherited()
    assert envvars.RENAME not in os.environ
    assert envvars.WORKER not in os.environ
