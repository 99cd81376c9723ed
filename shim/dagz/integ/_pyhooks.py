"""Python-level hooks for drivers the shim cannot see (interposition-notes §6-7): PyMySQL and
asyncpg speak the protocol in Python; psycopg's pure-Python implementation calls libpq through
ctypes. Each hook asks the family config (`maybe_reroute`, the same decision and lifecycle as a
hooked C connect) or the shim's own conninfo rewriter. Installed once, idempotently."""

from __future__ import annotations

import functools
from typing import Any

from dagz import _bypass, _callbacks, _shim
from dagz._state import STATE
from dagz.config import MYSQL_CONFIG, PG_CONFIG, DagzError

_MARK = "__dagz_wrapped__"


def _wrapped(obj: Any) -> bool:
    return bool(getattr(obj, _MARK, False))


def install_psycopg_python() -> None:
    """psycopg with PSYCOPG_IMPL=python: rewrite the conninfo handed to libpq through ctypes."""
    try:
        from psycopg.pq import pq_ctypes
    except Exception:
        return
    cls = pq_ctypes.PGconn
    for name in ("connect", "connect_start"):
        original = getattr(cls, name)  # a classmethod, already bound to the class
        if _wrapped(original):
            continue

        def make(orig: Any) -> Any:
            @functools.wraps(orig)
            def hook(cls: Any, conninfo: bytes) -> Any:
                if _shim.PRELOADED or PG_CONFIG.configured:
                    try:
                        text = _shim.pg_rewrite_conninfo(
                            conninfo.decode("utf-8", "surrogateescape")
                        )
                    except _shim.ShimError as exc:
                        raise DagzError(str(exc)) from None
                    conninfo = text.encode("utf-8", "surrogateescape")
                return orig(conninfo)

            setattr(hook, _MARK, True)
            return classmethod(hook)

        setattr(cls, name, make(original))


def install_asyncpg() -> None:
    """asyncpg: rewrite the database after asyncpg resolved it (dsn, kwargs, service, PGDATABASE,
    user fallback) — connect() and pools both go through `_parse_connect_arguments`."""
    try:
        from asyncpg import connect_utils
    except ImportError:
        return
    original = connect_utils._parse_connect_arguments
    if _wrapped(original):
        return

    @functools.wraps(original)
    def hook(*args: Any, **kwargs: Any) -> Any:
        addrs, params, config = original(*args, **kwargs)
        new = PG_CONFIG.maybe_reroute(params.database) if params.database else params.database
        if new != params.database:
            params = params._replace(database=new)
        return addrs, params, config

    setattr(hook, _MARK, True)
    connect_utils._parse_connect_arguments = hook


def install_pymysql() -> None:
    """PyMySQL: the `database`/`db` of `Connection(...)`, `select_db()`, and `USE name` queries."""
    try:
        from pymysql import connections
    except ImportError:
        return
    cls = connections.Connection
    if _wrapped(cls.__init__):
        return
    init, select_db, query = cls.__init__, cls.select_db, cls.query

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        for key in ("database", "db"):
            if kwargs.get(key):
                kwargs[key] = MYSQL_CONFIG.maybe_reroute(kwargs[key])
        # PyMySQL's positional order: host, user, password, database
        if len(args) >= 4 and args[3]:
            args = (*args[:3], MYSQL_CONFIG.maybe_reroute(args[3]), *args[4:])
        init(self, *args, **kwargs)

    @functools.wraps(select_db)
    def _select_db(self: Any, db: str) -> Any:
        return select_db(self, MYSQL_CONFIG.maybe_reroute(db) if db else db)

    @functools.wraps(query)
    def _query(self: Any, sql: Any, unbuffered: bool = False) -> Any:
        if not (_shim.PRELOADED or MYSQL_CONFIG.configured):
            return query(self, sql, unbuffered)
        if isinstance(sql, str):
            data = sql.encode(getattr(self, "encoding", None) or "utf-8", "surrogateescape")
        elif isinstance(sql, (bytes, bytearray)):
            data = bytes(sql)
        else:
            return query(self, sql, unbuffered)
        new = _use_target(data)
        return query(self, sql if new is None else new, unbuffered)

    for fn in (__init__, _select_db, _query):
        setattr(fn, _MARK, True)
    cls.__init__ = __init__
    cls.select_db = _select_db
    cls.query = _query


def _rerouting_here() -> bool:
    """Whether a MySQL connect from this thread / task would be rerouted at all."""
    return (
        MYSQL_CONFIG.configured
        and STATE.reroute
        and not MYSQL_CONFIG.disabled_here()
        and not _bypass.is_bypassed()
        and not _callbacks.owned_by_callback()
    )


def _use_target(data: bytes) -> bytes | None:
    """The MySQL hooks' rule (the shim's classifier) applied to one PyMySQL statement: the
    statement to send instead (None: unchanged). A single `USE` is rewritten exactly; a statement
    that could change the database in a way dagz cannot rewrite (`USE` among several statements,
    inside EXECUTE IMMEDIATE / PREPARE ... FROM, ...) raises DagzError when its target would be
    rerouted."""
    try:
        kind, name = _shim.mysql_statement(data)
        if kind == _shim.STMT_OTHER:
            return None
        new = MYSQL_CONFIG.maybe_reroute(name) if name else ""
        if kind == _shim.STMT_USE:
            return None if new == name else _shim.mysql_rewrite_statement(data, new)
        if (name and new == name) or (not name and not _rerouting_here()):
            return None
        _shim.mysql_rewrite_statement(data, new)  # raises with the refusal
    except _shim.ShimError as exc:
        raise DagzError(str(exc)) from None
    raise DagzError("dagz: PyMySQL: statement refused")


#: The Python-level hooks of each family's drivers (engine id -> installers).
_FAMILY_HOOKS = {
    _shim.ENGINE_POSTGRES: (install_psycopg_python, install_asyncpg),
    _shim.ENGINE_MYSQL: (install_pymysql,),
}


def install_family(engine: int) -> None:
    """Every installed driver of the family gets its hook (a driver not installed is skipped),
    whatever the conftest imported and in whichever order."""
    for install in _FAMILY_HOOKS.get(engine, ()):
        install()
