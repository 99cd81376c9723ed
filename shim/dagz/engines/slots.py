"""Provisioning slots: how many worker databases are provisioned at once on one server.

Copying a database is DDL-heavy work on the server (MariaDB: a ``CREATE TABLE`` per table, each
a file and a dictionary update; PostgreSQL: a file copy and a checkpoint), and so are the catalog
reads of a fingerprint. With ``DAGZ_PROVISION_SLOTS=N`` every `dagz.engines.warm.provision`
first takes one of ``N`` *slots* of its server and holds it until it is done; the others wait
their turn. The slots are server-side locks, so they bound the provisionings of every process
and every machine on that server (xdist workers, CI shards):

* PostgreSQL: the session-level advisory lock ``(SLOT_CLASS, i)`` (the two-integer form: a key
  space apart from the worker leases' one-bigint keys);
* MariaDB/MySQL: ``GET_LOCK('dagz:slot:<i>')``.

Each is held on a connection of its own, opened for the provisioning and closed after it (the
server frees the lock when that session ends, so a killed worker frees its slot). A worker first
takes any free slot (one statement, lazily evaluated: ``CASE``/``IF`` stop at the first lock they
get), else waits for slot ``worker number mod N``. A wait longer than `WAIT_SECONDS` (or a slot
that cannot be taken at all: no privilege, a server without the functions) provisions without a
slot: the bound is about speed, never about correctness.

``DAGZ_PROVISION_SLOTS``: unset or ``0``, no bound (the default); a number, that many slots;
``auto``, two per core of the server — MariaDB's ``@@thread_pool_size`` (its default is the
server's CPU count), else the cores of this machine — at least 2.

Why no bound by default (bench/scaling.py, 16 workers at once against 4, 100 tables, three runs
on a shared 2-core machine, slots and no slots interleaved): with no bound the cost grew with the
work in the counted runs (MariaDB fresh copies 3.7-4.5x, warm starts 3.8x, and 5.9x in a run
under heavy load; PostgreSQL 4.0x and 3.7x), and 4 slots made fresh copies slower (MariaDB 8.1 s
against 4.5 s: probably copies at once overlap their DDL's disk flushes, in waves not;
PostgreSQL 3.2 s against 2.0 s: each FILE_COPY copy needs a checkpoint, copies at once share
one). They made MariaDB warm starts between 3% slower and 27% faster (the most under heavy other
load), so a server busy with other work may want them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from dagz import envvars
from dagz._bypass import hard_bypass
from dagz.engines.base import close_quietly

#: The advisory lock class of the PostgreSQL slots (``b"dzsl"`` as a big-endian int4).
SLOT_CLASS = 0x647A736C
#: The longest wait for a slot before provisioning without one.
WAIT_SECONDS = 300


def slot_count(server_cores: int | None = None) -> int:
    """The number of slots ``DAGZ_PROVISION_SLOTS`` asks for: 0 (no bound) when unset, ``0`` or
    not understood; ``auto``: 2 per core (`server_cores` when known, else this machine's), at
    least 2."""
    text = os.environ.get(envvars.PROVISION_SLOTS, "").strip().lower()
    if text == "auto":
        return max(2, 2 * (server_cores or os.cpu_count() or 1))
    try:
        return max(0, int(text or "0"))
    except ValueError:
        return 0  # the bound only affects speed


def _worker_number() -> int:
    try:
        return int(os.environ.get(envvars.WORKER, "0"))
    except ValueError:
        return 0


def _pg_statements(count: int, wait: int) -> tuple[str, str]:
    whens = " ".join(f"WHEN pg_try_advisory_lock({SLOT_CLASS}, {i}) THEN {i}" for i in range(count))
    return (
        f"SELECT CASE {whens} ELSE -1 END",
        f"SET lock_timeout = '{WAIT_SECONDS}s'; SELECT pg_advisory_lock({SLOT_CLASS}, {wait})",
    )


def _mysql_statements(count: int, wait: int) -> tuple[str, str]:
    take = "-1"
    for i in reversed(range(count)):
        take = f"IF(GET_LOCK('dagz:slot:{i}', 0) = 1, {i}, {take})"
    return f"SELECT {take}", f"SELECT GET_LOCK('dagz:slot:{wait}', {WAIT_SECONDS})"


def _server_cores(conn: Any) -> int | None:
    """MariaDB's ``@@thread_pool_size`` (the server's CPU count unless configured), or None."""
    cur = conn.cursor()
    try:
        cur.execute("SELECT @@GLOBAL.thread_pool_size")
        row = cur.fetchone()
        return int(row[0]) if row and row[0] else None
    except Exception:
        return None  # MySQL has no thread pool variable (Enterprise's aside)
    finally:
        close_quietly(cur)


def _take(conn: Any, engine: str) -> int | None:
    """The slot taken on `conn` (None: no bound)."""
    auto = os.environ.get(envvars.PROVISION_SLOTS, "").strip().lower() == "auto"
    count = slot_count(_server_cores(conn) if auto and engine == "mysql" else None)
    if count <= 0:
        return None
    make = _pg_statements if engine == "postgres" else _mysql_statements
    wait = _worker_number() % count
    first, blocking = make(count, wait)
    cur = conn.cursor()
    try:
        cur.execute(first)
        got = int(cur.fetchone()[0])
        if got >= 0:
            return got
        if engine == "postgres":
            setting, query = blocking.split("; ")
            cur.execute(setting)
            cur.execute(query)
            return wait
        cur.execute(blocking)
        row = cur.fetchone()
        return wait if row and row[0] == 1 else None
    finally:
        close_quietly(cur)


@contextlib.contextmanager
def provisioning_slot(engine: str, open_conn: Callable[[], Any]) -> Iterator[int | None]:
    """Holds one provisioning slot of the server for the duration (yields its number; None:
    none held — no bound configured, or the slot could not be had). `engine` is the
    engine's NAME ("postgres" or "mysql"); `open_conn` opens an autocommit connection to that
    server."""
    if slot_count(server_cores=1) == 0:
        yield None  # no bound: not even a connection
        return
    with hard_bypass():
        try:
            conn = open_conn()
        except Exception:
            conn = None  # the provisioning's own connect reports what is wrong
        try:
            slot = None if conn is None else _take(conn, engine)
        except Exception:
            slot = None  # no privilege, a timeout: provision without a slot
    try:
        yield slot
    finally:
        if conn is not None:
            with hard_bypass():
                close_quietly(conn)
