"""Shared bits of the sample project: where its databases are, how its tests connect, and the
event log that the dagz e2e suite reads after the run.

Environment (set by the e2e suite):

* ``DZ_DB``: the base database name, the same on PostgreSQL and MariaDB (it holds the schema);
* ``DZ_EVENTS``: a file to which callbacks and tests append one JSON object per line;
* ``DZ_FAMILIES``: ``pg``, ``mysql`` or ``pg,mysql`` (the families the conftest configures);
* ``DZ_HOLD_S``: how long the row tests keep their rows before counting them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

DB = os.environ.get("DZ_DB", "dz_sample")
FAMILIES = frozenset(f.strip() for f in os.environ.get("DZ_FAMILIES", "pg,mysql").split(",") if f)
HOLD_S = float(os.environ.get("DZ_HOLD_S", "0.1"))

PG_KW: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MYSQL_KW: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
PG_URI = f"postgresql://postgres@127.0.0.1:5432/{DB}"
MYSQL_URI = f"mysql://root@127.0.0.1:3306/{DB}"

PG_DRIVERS = ("psycopg", "psycopg2")
MYSQL_DRIVERS = ("mysqlclient", "pymysql")
FAMILY_OF = {"psycopg": "pg", "psycopg2": "pg", "mysqlclient": "mysql", "pymysql": "mysql"}
CURRENT_DB_SQL = {"pg": "SELECT current_database()", "mysql": "SELECT DATABASE()"}


class Cursor(Protocol):
    """The part of a DB-API cursor the sample uses (all four drivers have it)."""

    def execute(self, query: str, params: Sequence[object] | None = ..., /) -> object: ...
    def fetchone(self) -> Sequence[object] | None: ...
    def close(self) -> None: ...


class Connection(Protocol):
    """The part of a DB-API connection the sample uses."""

    def cursor(self) -> Cursor: ...
    def close(self) -> None: ...


def current_test() -> str | None:
    """The running test's node id (``PYTEST_CURRENT_TEST`` without its phase)."""
    value = os.environ.get("PYTEST_CURRENT_TEST")
    return value.rsplit(" (", 1)[0] if value else None


def record(event: str, **fields: object) -> None:
    """Appends one event (with pid, xdist worker and current test) to ``DZ_EVENTS``."""
    path = os.environ.get("DZ_EVENTS")
    if not path:
        return
    entry = {
        "event": event,
        "pid": os.getpid(),
        "worker": os.environ.get("PYTEST_XDIST_WORKER", ""),
        "test": current_test(),
        **fields,
    }
    data = (json.dumps(entry, sort_keys=True) + "\n").encode()
    # One write(2) with O_APPEND: lines of concurrent processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def mapped_shim() -> str | None:
    """Path of the libdagz mapped into this process (LD_PRELOAD), if any."""
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            path = line.split()[-1] if "/" in line else ""
            if os.path.basename(path).startswith("libdagz"):
                return path
    return None


def connect(driver: str, db: str = DB) -> Connection:
    """An autocommit DB-API connection to ``db`` through ``driver``."""
    if driver == "psycopg":
        import psycopg  # noqa: PLC0415 - every driver is imported only when used

        return psycopg.connect(dbname=db, autocommit=True, **PG_KW)
    if driver == "psycopg2":
        import psycopg2  # noqa: PLC0415

        conn = psycopg2.connect(dbname=db, **PG_KW)
        conn.autocommit = True
        return conn
    if driver == "mysqlclient":
        import MySQLdb  # noqa: PLC0415

        return MySQLdb.connect(database=db, autocommit=True, **MYSQL_KW)
    if driver == "pymysql":
        import pymysql  # noqa: PLC0415

        return pymysql.connect(database=db, autocommit=True, **MYSQL_KW)
    raise ValueError(driver)


def scalar(conn: Connection, sql: str, params: tuple[object, ...] | None = None) -> object:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        row = cur.fetchone()
    finally:
        cur.close()
    return None if row is None else row[0]


def execute(conn: Connection, sql: str, params: tuple[object, ...] | None = None) -> None:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
    finally:
        cur.close()


def land(driver: str, conn: Connection, **extra: object) -> str:
    """Asks the server which database ``conn`` is in, and records it as a ``landed`` event."""
    family = FAMILY_OF.get(driver, str(extra.pop("family", "pg")))
    db = str(scalar(conn, CURRENT_DB_SQL[family]))
    record("landed", driver=driver, family=family, db=db, **extra)
    return db


def count(conn: Connection, table: str) -> int:
    value = scalar(conn, f"SELECT count(*) FROM {table}")
    assert isinstance(value, int), value
    return value


def worker_num() -> int:
    """The xdist worker number (``gw3`` → 3), 0 without xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") else 0


def worker_db(db: str = DB) -> str:
    """The per-worker name that dagz's default rewrite gives ``db`` on this worker."""
    return f"{db}_jw{worker_num():02}"


def rows_case(driver: str, case: int) -> None:
    """The body of the row tests: fixed primary keys 1..n in the shared ``items`` table, then an
    exact count. Tests running at the same time on one database collide (duplicate keys, counts
    off); the test removes its own rows at the end, so the suite passes serially without dagz."""
    n = 1 + case % 4
    label = f"{driver}-{case}"
    conn = connect(driver)
    try:
        land(driver, conn)
        assert count(conn, "items") == 0, "rows of another test are visible"
        for key in range(1, n + 1):
            execute(conn, "INSERT INTO items (id, label) VALUES (%s, %s)", (key, label))
        time.sleep(HOLD_S)
        assert count(conn, "items") == n
    finally:
        try:
            execute(conn, "DELETE FROM items WHERE label = %s", (label,))
        finally:
            conn.close()
