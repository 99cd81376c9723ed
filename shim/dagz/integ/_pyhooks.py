"""Python-level hooks for drivers the shim cannot see (interposition-notes §6-7): PyMySQL and
asyncpg speak the protocol in Python; psycopg's pure-Python implementation calls libpq through
ctypes. Each hook asks the family config (`maybe_reroute`, the same decision and lifecycle as a
hooked C connect) or the shim's own conninfo rewriter. Installed once, idempotently."""

from __future__ import annotations

import functools
from typing import Any

from dagz import _shim
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
        text = (
            sql.decode("utf-8", "surrogateescape") if isinstance(sql, (bytes, bytearray)) else sql
        )
        if isinstance(text, str) and text.lstrip()[:1] in ("u", "U"):
            name = _use_target(text)
            if name is not None:
                new = MYSQL_CONFIG.maybe_reroute(name)
                if new != name:
                    sql = "USE `" + new.replace("`", "``") + "`"
        return query(self, sql, unbuffered)

    for fn in (__init__, _select_db, _query):
        setattr(fn, _MARK, True)
    cls.__init__ = __init__
    cls.select_db = _select_db
    cls.query = _query


def _use_target(text: str) -> Any:
    """The name of a statement that is exactly `USE name`, else None (same grammar as the shim)."""
    import re

    m = re.fullmatch(
        r"\s*[uU][sS][eE](?:\s+([A-Za-z0-9_$\x80-\uffff]+)|\s*`((?:[^`]|``)+)`)\s*;?\s*", text
    )
    if m is None:
        return None
    return m.group(1) if m.group(1) is not None else m.group(2).replace("``", "`")


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
