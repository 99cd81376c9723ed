"""PostgreSQL connections: the driver (psycopg (3) if importable, else psycopg2), connect, the
admin connection for CREATE/DROP DATABASE, errors, quoting, and the statement helpers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from dagz._bypass import hard_bypass
from dagz._dbapi import driver
from dagz.engines.base import DbConnection, close_quietly, opened, quoted, redact
from dagz.errors import EngineError

#: Databases the admin connection of `clone`/`drop` may use, in order of preference.
_MAINTENANCE_DBS = ("postgres", "template1")

#: SQLSTATE 3D000 invalid_catalog_name: the database does not exist.
_INVALID_CATALOG = "3D000"

#: How long dagz's statements wait for a lock (a leaked transaction of the test would otherwise
#: block them forever).
LOCK_TIMEOUT = "10s"


def _driver() -> tuple[str, Any]:
    """(name, module) of the driver to use."""
    return driver("PostgreSQL", "psycopg (3) or psycopg2", "psycopg", "psycopg2")


def connect(dbname: str, /, **connect_kwargs: object) -> Any:
    """An autocommit connection to `dbname`, made with rerouting bypassed.

    `connect_kwargs` are the user's (host, port, user, password, sslmode, a ``dsn``/``conninfo``
    string, …); `dbname` wins over any ``dbname``/``database`` among them.
    """
    kwargs = dict(connect_kwargs)
    kwargs.pop("database", None)
    kwargs["dbname"] = dbname
    dsn = kwargs.pop("conninfo", None)
    dsn = kwargs.pop("dsn", dsn) or ""
    name, mod = _driver()
    with hard_bypass():
        if name == "psycopg":
            kwargs.pop("autocommit", None)
            return mod.connect(dsn, autocommit=True, **kwargs)
        conn = mod.connect(dsn, **kwargs)
        conn.autocommit = True
        return conn


def _connection(
    dbname: str, what: str, connect_kwargs: dict[str, object], *, keep: bool = False
) -> contextlib.AbstractContextManager[DbConnection]:
    """`connect` inside `hard_bypass`, closed at the end (or on error only, with `keep`);
    connect errors become EngineError."""
    return opened(
        lambda: connect(dbname, **connect_kwargs),
        lambda exc: _error(f"{what}: cannot connect to {dbname!r}", exc, connect_kwargs),
        keep=keep,
    )


def _missing(exc: BaseException, dbname: str) -> bool:
    """Whether a connect error says that `dbname` does not exist."""
    return _sqlstate(exc) == _INVALID_CATALOG or f'database "{dbname}" does not exist' in str(exc)


@contextlib.contextmanager
def _maintenance(
    avoid: Sequence[str], what: str, connect_kwargs: dict[str, object]
) -> Iterator[DbConnection]:
    """The admin connection for CREATE/DROP DATABASE: to ``postgres``, or to ``template1`` when
    ``postgres`` does not exist or is one of the databases being created/dropped/cloned."""
    candidates = [name for name in _MAINTENANCE_DBS if name not in avoid]
    with hard_bypass():
        for i, name in enumerate(candidates):
            try:
                conn = connect(name, **connect_kwargs)
            except EngineError:
                raise
            except Exception as exc:
                if _missing(exc, name) and i + 1 < len(candidates):
                    continue
                raise _error(f"{what}: cannot connect to {name!r}", exc, connect_kwargs) from exc
            try:
                yield conn
            finally:
                close_quietly(conn)
            return
    raise EngineError(f"dagz: {what}: no maintenance database to connect to")


def _server_version(conn: DbConnection) -> int:
    info = getattr(conn, "info", None)
    version = getattr(info, "server_version", None)
    if version is None:
        version = getattr(conn, "server_version", 0)
    return int(version or 0)


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def _one_line(exc: BaseException, connect_kwargs: dict[str, object]) -> str:
    """The first line of a driver error (psycopg2 adds DETAIL/HINT lines), password removed."""
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else type(exc).__name__
    details = [ln.strip() for ln in text.splitlines()[1:] if ln.strip().startswith("DETAIL:")]
    return redact(" ".join([first, *details]), connect_kwargs)


def _error(what: str, exc: BaseException, connect_kwargs: dict[str, object]) -> EngineError:
    return EngineError(f"dagz: {what}: {_one_line(exc, connect_kwargs)}")


@contextlib.contextmanager
def _failing_as(what: str, connect_kwargs: dict[str, object]) -> Iterator[None]:
    """Driver errors inside become `EngineError` naming `what`."""
    try:
        yield
    except EngineError:
        raise
    except Exception as exc:
        raise _error(what, exc, connect_kwargs) from exc


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier in double quotes (``"`` doubled)."""
    return quoted(name, '"')


def _qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _literal(text: str) -> str:
    """A string literal (independent of standard_conforming_strings)."""
    if "\x00" in text:
        raise EngineError(f"dagz: string {text!r} contains a NUL byte")
    body = text.replace("'", "''")
    if "\\" in body:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return f"'{body}'"


def _fetch(
    conn: DbConnection, sql: str, params: Sequence[object] | None = None
) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return list(cur.fetchall())
    finally:
        cur.close()


def _execute(conn: DbConnection, sql: str, params: Sequence[object] | None = None) -> None:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
    finally:
        cur.close()


def _rollback(conn: DbConnection) -> None:
    with contextlib.suppress(Exception):
        _execute(conn, "ROLLBACK")


def _sessions(conn: DbConnection, db_name: str) -> str:
    """Who is connected to `db_name` (pid, user, application, client, state; never query text,
    which may hold a password)."""
    try:
        rows = _fetch(
            conn,
            "SELECT pid, usename, application_name, client_addr::text, state"
            "  FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            " ORDER BY pid",
            (db_name,),
        )
    except Exception:
        return "unknown"
    if not rows:
        return "none now"
    return "; ".join(
        f"pid {pid} user {user!s} application {app or '-'!s} client {addr or 'local'!s}"
        f" state {state or '-'!s}"
        for pid, user, app, addr, state in rows
    )
