"""Issue 12, "killed runs leave nothing that poisons the next one": a killed worker left prepared
transactions in its worker database, and every later run's ``worker_init`` failed ("database is
being used by prepared transactions"), run after run. Now provisioning rolls back the prepared
transactions of the worker database it is about to keep, rebuild or drop, and ends the other
sessions of one it rebuilds or drops (PostgreSQL: ``DROP … WITH (FORCE)``; MariaDB: ``KILL``).

Prepared transactions need ``max_prepared_transactions > 0``. When the shared PostgreSQL server
has 0 (the default), the PostgreSQL tests start a private cluster of their own (initdb in a
temporary directory, another port, as the postgres user) and remove it afterwards.

In this process against the real servers (the config objects and engines, without the shim
preloaded); names ``<run prefix>_<tag>_<8 hex>…``, dropped at the end; checked server side.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from dagz import envvars, fresh
from dagz._state import STATE
from dagz.config import MYSQL_CONFIG, PG_CONFIG
from dagz.engines import mysql as _mysql
from dagz.engines import postgres as _pg
from dagz.engines.mysql import cloning as _mysql_cloning
from dagz.engines.mysql import connection as _mysql_connection
from db_fixtures import MY, PG, pg_databases, run_sql  # noqa: F401 - fixture used by name

from support import unique_name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    if not found:
        pytest.fail(f"{tool} not found under /usr/lib/postgresql/*/bin (postgresql server package)")
    return found[-1]


def _as_postgres(*argv: str) -> list[str]:
    return list(argv) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *argv]


@pytest.fixture(scope="module")
def pg_2pc() -> Iterator[dict[str, Any]]:
    """Connection arguments of a PostgreSQL server with prepared transactions enabled: the
    shared one when it allows them, else a private cluster made here and removed after."""
    conn = _pg.connect("postgres", **PG)
    try:
        cur = conn.cursor()
        cur.execute("SHOW max_prepared_transactions")
        allowed = int(cur.fetchall()[0][0])
    finally:
        conn.close()
    if allowed > 0:
        yield dict(PG)
        return
    # In /tmp itself: the suite's own TMPDIR is private to root, and initdb runs as postgres.
    home = Path(tempfile.mkdtemp(prefix="dz_pg2pc_", dir="/tmp"))
    data = home / "data"
    port = _free_port()
    shutil.chown(home, "postgres") if os.geteuid() == 0 else None
    ctl = _pg_bin("pg_ctl")
    try:
        subprocess.run(
            _as_postgres(_pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"),
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = (
            f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={home}"
            " -c max_prepared_transactions=8 -c fsync=off -c shared_buffers=16MB"
        )
        subprocess.run(
            _as_postgres(
                ctl, "-D", str(data), "-o", options, "-l", str(home / "log"), "-w", "start"
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        yield {"host": "127.0.0.1", "port": port, "user": "postgres"}
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres(ctl, "-D", str(data), "-m", "immediate", "-w", "stop"),
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)


def _pg_run(kw: dict[str, Any], db: str, *statements: str) -> list[tuple[Any, ...]]:
    return run_sql(_pg, db, kw, *statements)


def _prepared(kw: dict[str, Any], db: str) -> list[str]:
    rows = _pg_run(kw, "postgres", f"SELECT gid FROM pg_prepared_xacts WHERE database = '{db}'")
    return [str(r[0]) for r in rows]


@pytest.fixture
def pg_names(pg_2pc: dict[str, Any]) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        _pg.drop(name, **pg_2pc)


def _leave_prepared(kw: dict[str, Any], db: str, gid: str) -> None:
    """What the killed worker left: a transaction prepared in its worker database."""
    _pg_run(
        kw, db, "BEGIN", "INSERT INTO items VALUES (99, 'prepared')", f"PREPARE TRANSACTION '{gid}'"
    )


@pytest.mark.parametrize("base_changed", [True, False], ids=["rebuild", "keep"])
def test_prepared_transaction_left_by_a_killed_run_does_not_fail_worker_init(
    pg_2pc: dict[str, Any], pg_names: list[str], base_changed: bool
) -> None:
    """The next run's worker_init rolls the prepared transaction back, then rebuilds (the base
    changed: the DROP no longer fails) or keeps the worker database (which then no longer
    holds a row lock that the next test's INSERT of the same key would wait on forever)."""
    base = unique_name("base")
    pg_names.append(base)
    _pg_run(pg_2pc, "postgres", f'CREATE DATABASE "{base}"')
    _pg_run(
        pg_2pc,
        base,
        "CREATE TABLE items (id int PRIMARY KEY, label text)",
        "INSERT INTO items VALUES (1, 'one')",
    )
    target = PG_CONFIG.reroute_db(base)
    pg_names.append(target)
    worker = PG_CONFIG.session().worker_num
    PG_CONFIG.create_worker_init([base], **pg_2pc)(worker)
    gid = unique_name("gid")
    _leave_prepared(pg_2pc, target, gid)
    assert _prepared(pg_2pc, target) == [gid]
    if base_changed:
        _pg_run(pg_2pc, base, "INSERT INTO items VALUES (2, 'two')")

    PG_CONFIG.create_worker_init([base], **pg_2pc)(worker)  # the next run

    assert _prepared(pg_2pc, target) == []
    rows = _pg_run(pg_2pc, target, "SELECT id FROM items ORDER BY id")
    assert rows == ([(1,), (2,)] if base_changed else [(1,)])
    _pg_run(pg_2pc, target, "SET lock_timeout = '2s'", "INSERT INTO items VALUES (99, 'test')")


def test_db_drop_rolls_back_prepared_transactions_first(
    pg_2pc: dict[str, Any], pg_names: list[str]
) -> None:
    """Dropping a worker database (``dagz db drop`` → `drop`) with a prepared transaction."""
    base = unique_name("base")
    pg_names.append(base)
    _pg_run(pg_2pc, "postgres", f'CREATE DATABASE "{base}"')
    _pg_run(pg_2pc, base, "CREATE TABLE items (id int PRIMARY KEY, label text)")
    target = PG_CONFIG.reroute_db(base)
    pg_names.append(target)
    PG_CONFIG.create_worker_init([base], **pg_2pc)(PG_CONFIG.session().worker_num)
    _leave_prepared(pg_2pc, target, unique_name("gid"))
    _pg.drop(target, **pg_2pc)
    assert not _pg_run(pg_2pc, "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{target}'")
    assert _prepared(pg_2pc, target) == []


# --------------------------------------------------------------------------------------------
# MariaDB: a session a killed run left behind


def _my_run(db: str | None, *statements: str) -> list[tuple[Any, ...]]:
    return run_sql(_mysql, db, MY, *statements)


def test_session_left_in_a_worker_database_is_ended_before_a_rebuild() -> None:
    """A session of the killed run still inside its worker database (a child process that
    outlived it, holding a lock): the rebuild ends it (KILL) instead of waiting on it and
    failing the worker."""
    base = unique_name("base")
    target = MYSQL_CONFIG.reroute_db(base)
    # Not dagz's own connection: a session of another process (the killed run's child).
    holder = pymysql.connect(autocommit=True, **MY)
    try:
        _my_run(None, f"CREATE DATABASE `{base}`")
        _my_run(
            base,
            "CREATE TABLE items (id int PRIMARY KEY, label text)",
            "INSERT INTO items VALUES (1, 'one')",
        )
        worker = MYSQL_CONFIG.session().worker_num
        MYSQL_CONFIG.create_worker_init([base], **MY)(worker)
        cur = holder.cursor()
        cur.execute(f"USE `{target}`")
        cur.execute("START TRANSACTION")
        cur.execute("SELECT * FROM items FOR UPDATE")
        cur.fetchall()
        cur.execute("SELECT CONNECTION_ID()")
        holder_id = int(cur.fetchall()[0][0])
        _my_run(base, "INSERT INTO items VALUES (2, 'two')")  # the next run rebuilds

        MYSQL_CONFIG.create_worker_init([base], **MY)(worker)

        assert _my_run(target, "SELECT id FROM items ORDER BY id") == [(1,), (2,)]
        alive = _my_run(
            None, f"SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = {holder_id}"
        )
        assert alive == []
    finally:
        threading.Thread(target=holder.close, daemon=True).start()
        _mysql.drop(target, **MY)
        _mysql.drop(base, **MY)


def test_ending_sessions_spares_a_session_reading_the_catalog() -> None:
    """While MariaDB fills information_schema.TRIGGERS it switches the reading session's
    database to each schema it reads, so PROCESSLIST shows that session "in" a database it never
    used. Before: dropping or rebuilding that database ended (KILL) it: the CI failure "Lost
    connection to server during query" of another test's provisioning read. A session that
    really stays in the database is still ended (the test above)."""
    db = unique_name("cat")
    _my_run(None, f"CREATE DATABASE `{db}`")
    for i in range(40):  # a catalog read then spends a while in `db`
        _my_run(
            db,
            f"CREATE TABLE t{i} (a int)",
            f"CREATE TRIGGER tr{i} BEFORE INSERT ON t{i} FOR EACH ROW SET NEW.a = NEW.a + 1",
        )
    stop, errors, reads = threading.Event(), [], [0]

    def read_the_catalog() -> None:
        conn = pymysql.connect(autocommit=True, **MY)  # another process's, connected to no db
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute(
                        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS"
                        f" WHERE TRIGGER_SCHEMA = '{unique_name('none')}'"
                    )
                    cur.fetchall()
                    reads[0] += 1
        except pymysql.MySQLError as exc:
            errors.append(exc)
        finally:
            conn.close()

    reader = threading.Thread(target=read_the_catalog)
    reader.start()
    ended: list[int] = []
    try:
        with contextlib.closing(_mysql_connection.connect(None, **MY)) as killer:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline and not errors:
                ended += _mysql_cloning.end_sessions(killer, db)
    finally:
        stop.set()
        reader.join(timeout=30)
        _mysql.drop(db, **MY)
    assert errors == [], f"the catalog reader was ended after {reads[0]} reads: {errors}"
    assert ended == []
    assert reads[0] > 0


# --------------------------------------------------------------------------------------------
# MariaDB: a prepared XA transaction a killed test left


def _leave_prepared_xa(db: str, xid: str) -> None:
    """What the killed test left: an XA transaction prepared on `db`'s table, its session gone
    (MariaDB keeps it, with its locks, until someone commits or rolls it back)."""
    _my_run(
        db,
        f"XA START '{xid}'",
        "INSERT INTO items VALUES (9, 'prepared')",
        f"XA END '{xid}'",
        f"XA PREPARE '{xid}'",
    )


def _prepared_xa() -> list[str]:
    rows = _my_run(None, "XA RECOVER")
    return [r[3].decode() if isinstance(r[3], bytes) else str(r[3]) for r in rows]


def test_prepared_xa_transaction_in_a_worker_database_names_itself_and_its_rollback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MariaDB does not say which database a prepared XA transaction touches (XA RECOVER lists
    ids only), so dagz cannot roll back only its own: `dagz db drop` fails with a `dagz:` error
    naming the XA ids and the XA ROLLBACK command (before: a bare lock wait timeout, "other
    sessions: none now"), and the rebuild, which cannot drop the copy either, gives the worker a
    fresh name (`dagz.fresh`; tests/e2e/test_fresh_name.py) with that error in the summary. The
    XA transaction is left alone."""
    monkeypatch.setattr(_mysql.batch, "LOCK_WAIT_SECONDS", 1)
    monkeypatch.setattr(fresh, "_RENAMED", {})  # this process's renames end with the test
    monkeypatch.delenv(envvars.RENAME, raising=False)
    base = unique_name("base")
    target = MYSQL_CONFIG.reroute_db(base)
    xid = unique_name("xa")
    try:
        _my_run(None, f"CREATE DATABASE `{base}`")
        _my_run(base, "CREATE TABLE items (id int PRIMARY KEY, label text)")
        worker = MYSQL_CONFIG.session().worker_num
        MYSQL_CONFIG.create_worker_init([base], **MY)(worker)
        _leave_prepared_xa(target, xid)
        _my_run(base, "INSERT INTO items VALUES (2, 'two')")  # the next run rebuilds

        MYSQL_CONFIG.create_worker_init([base], **MY)(worker)
        with pytest.raises(Exception, match=r"^dagz: ") as drop:
            _mysql.drop(target, **MY)

        assert MYSQL_CONFIG.reroute_db(base) == f"{target}_f1"
        blocked = [line for line in STATE.summary if f"{target} could not be rebuilt" in line]
        for text in (blocked[-1], str(drop.value)):
            assert f"XA ROLLBACK '{xid}'" in text, text
            assert "does not say which database" in text, text
        assert xid in _prepared_xa()  # not rolled back by dagz
    finally:
        if xid in _prepared_xa():
            _my_run(None, f"XA ROLLBACK '{xid}'")
        for name in (f"{target}_f1", target, base):
            _mysql.drop(name, **MY)
    assert xid not in _prepared_xa()
