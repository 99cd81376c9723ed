"""PostgreSQL `clone` and `drop`.

Cloning is ``CREATE DATABASE … TEMPLATE`` (strategy WAL_LOG, or FILE_COPY when ``fsync`` is off):
an atomic copy. Concurrent clones of one template succeed unless some session is connected to
the template; then PostgreSQL fails the statement (after waiting up to 5 s inside it for the
sessions to leave) and `_create_retrying` tries again, bounded.
"""

from __future__ import annotations

import time

from dagz._bypass import hard_bypass
from dagz.engines.base import DbConnection, close_quietly
from dagz.engines.postgres.connection import (
    _error,
    _execute,
    _failing_as,
    _fetch,
    _literal,
    _maintenance,
    _server_version,
    _sessions,
    _sqlstate,
    connect,
    quote_ident,
)

#: SQLSTATE 55006 object_in_use: "source database … is being accessed by other users".
_OBJECT_IN_USE = "55006"

#: Total time `clone` keeps retrying while the template is in use (PostgreSQL itself waits up to
#: 5 s inside each CREATE DATABASE for other sessions to leave the template).
CLONE_RETRY_SECONDS = 10.0


def _clone_strategy(conn: DbConnection, version: int) -> str:
    """`CREATE DATABASE … TEMPLATE` strategy (PostgreSQL >= 15). FILE_COPY forces a checkpoint
    of the whole server: with ``fsync = on`` that made it 1.4 to 2 times slower than WAL_LOG
    here, and much less steady under load; with ``fsync = off`` FILE_COPY was 1.3 times faster
    (bench/provisioning.py raw rows, BENCHMARKS.md)."""
    if version < 150000:
        return ""
    try:
        fsync = str(_fetch(conn, "SHOW fsync")[0][0]).lower()
    except Exception:
        fsync = "on"
    return " STRATEGY FILE_COPY" if fsync == "off" else " STRATEGY WAL_LOG"


def _template_sql(conn: DbConnection, base: str, target: str) -> str:
    """The CREATE DATABASE statement that copies `base` into `target`."""
    strategy = _clone_strategy(conn, _server_version(conn))
    return f"CREATE DATABASE {quote_ident(target)} TEMPLATE {quote_ident(base)}{strategy}"


def _drop(conn: DbConnection, db_name: str) -> None:
    if _server_version(conn) >= 130000:
        _execute(conn, f"DROP DATABASE IF EXISTS {quote_ident(db_name)} WITH (FORCE)")
        return
    _execute(
        conn,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (db_name,),
    )
    _execute(conn, f"DROP DATABASE IF EXISTS {quote_ident(db_name)}")


def rollback_prepared(
    conn: DbConnection, what: str, connect_kwargs: dict[str, object]
) -> list[str]:
    """Rolls back every prepared transaction of the database `conn` is connected to (a killed
    run's two-phase-commit test leaves them: they hold its locks, and ``DROP DATABASE`` fails
    with "database is being used by prepared transactions" until they are gone); returns their
    gids. ``ROLLBACK PREPARED`` must run in that database, by their owner or a superuser."""
    with _failing_as(f"{what} (rolling back its prepared transactions)", connect_kwargs):
        rows = _fetch(
            conn,
            "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() ORDER BY gid",
        )
        for (gid,) in rows:
            _execute(conn, f"ROLLBACK PREPARED {_literal(str(gid))}")
    return [str(gid) for (gid,) in rows]


def clear(db_name: str, what: str, connect_kwargs: dict[str, object]) -> None:
    """Before `db_name` (a database dagz owns) is dropped: its prepared transactions rolled
    back (its other sessions end with ``DROP … WITH (FORCE)``). A database that cannot be
    connected to (gone, or not accepting connections) is left to the DROP."""
    try:
        conn = connect(db_name, **connect_kwargs)
    except Exception:
        return
    try:
        rollback_prepared(conn, what, connect_kwargs)
    finally:
        close_quietly(conn)


def drop(db_name: str, **connect_kwargs: object) -> None:
    """``DROP DATABASE IF EXISTS db_name WITH (FORCE)``, its prepared transactions rolled back
    first (`clear`)."""
    what = f"dropping PostgreSQL database {db_name!r} failed"
    with hard_bypass():
        clear(db_name, what, connect_kwargs)
    with _maintenance((db_name,), what, connect_kwargs) as conn, _failing_as(what, connect_kwargs):
        _drop(conn, db_name)


def _exists(conn: DbConnection, db_name: str) -> bool:
    return bool(_fetch(conn, "SELECT 1 FROM pg_database WHERE datname = %s", (db_name,)))


def _create_retrying(
    conn: DbConnection, sql: str, source: str, what: str, connect_kwargs: dict[str, object]
) -> None:
    """Runs a CREATE DATABASE, retrying (bounded) while `source` is being accessed by others."""
    deadline = time.monotonic() + CLONE_RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            _execute(conn, sql)
            return
        except Exception as exc:
            if _sqlstate(exc) != _OBJECT_IN_USE or time.monotonic() + delay > deadline:
                holders = _sessions(conn, source) if _sqlstate(exc) == _OBJECT_IN_USE else ""
                detail = f"; sessions connected to {source!r}: {holders}" if holders else ""
                raise _error(f"{what}{detail}", exc, connect_kwargs) from exc
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _create_empty(
    conn: DbConnection, base: str, target: str, connect_kwargs: dict[str, object]
) -> None:
    """CREATE DATABASE `target` (empty: `base` does not exist)."""
    # The implicit template is template1: other sessions there make this fail the same way.
    _create_retrying(
        conn,
        f"CREATE DATABASE {quote_ident(target)}",
        "template1",
        f"creating empty PostgreSQL database {target!r} ({base!r} does not exist) failed",
        connect_kwargs,
    )


def clone(base: str, target: str, **connect_kwargs: object) -> str:
    """Creates `target` as a copy of `base` (schema and data); "cloned", or "empty" when `base`
    does not exist (then `target` is created empty). A leftover `target` is dropped first."""
    what = f"cloning PostgreSQL database {base!r} into {target!r} failed"
    with hard_bypass():
        clear(target, what, connect_kwargs)
    with _maintenance((base, target), what, connect_kwargs) as conn:
        with _failing_as(what, connect_kwargs):
            _drop(conn, target)
            base_exists = _exists(conn, base)
        if not base_exists:
            _create_empty(conn, base, target, connect_kwargs)
            return "empty"
        _create_retrying(conn, _template_sql(conn, base, target), base, what, connect_kwargs)
        return "cloned"
