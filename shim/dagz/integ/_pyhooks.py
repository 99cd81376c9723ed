"""Python-level hooks for drivers the shim cannot see: PyMySQL and
asyncpg speak the protocol in Python; psycopg's pure-Python implementation calls libpq through
ctypes. Each hook asks the family config (`maybe_reroute`, the same decision and lifecycle as a
hooked C connect) or the shim's own conninfo rewriter. Installed once, idempotently."""

from __future__ import annotations

import functools
import os
import re
import weakref
from collections.abc import Mapping
from typing import Any

from dagz import _bypass, _callbacks, _shim, use_check
from dagz._state import STATE
from dagz.auto import settings_of
from dagz.config import MYSQL_CONFIG, PG_CONFIG, DagzError, DbConfig
from dagz.integ import _pycalls

_MARK = "__dagz_wrapped__"


def _wrapped(obj: Any) -> bool:
    return bool(getattr(obj, _MARK, False))


def _reroute(cfg: DbConfig, name: str, settings: Mapping[str, str]) -> str:
    """`cfg.maybe_reroute(name)`, giving auto mode the connect's settings."""
    new = cfg.resolve(name, settings)
    return name if new is None else new


def _rewrite_conninfo(conninfo: str) -> str:
    """The shim's libpq rewrite (decision, callback with the settings) of a conninfo or URI."""
    try:
        return _shim.pg_rewrite_conninfo(conninfo)
    except _shim.ShimError as exc:
        raise DagzError(str(exc)) from None


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
                    text = _rewrite_conninfo(conninfo.decode("utf-8", "surrogateescape"))
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
        _install_asyncpg_use_check()  # here: asyncpg is imported completely by now
        addrs, params, config = original(*args, **kwargs)
        new = (
            _reroute(PG_CONFIG, params.database, _asyncpg_settings(addrs, params))
            if params.database
            else params.database
        )
        if new != params.database:
            params = params._replace(database=new)
        return addrs, params, config

    setattr(hook, _MARK, True)
    connect_utils._parse_connect_arguments = hook


#: asyncpg connection -> the test generation its database was last prepared in.
_ASYNCPG_SEEN: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
_ENDS_TRANSACTION = re.compile(
    r"\s*(ROLLBACK|COMMIT|END|ABORT)(\s+(WORK|TRANSACTION))?[\s;]*", re.IGNORECASE
)


def _install_asyncpg_use_check() -> None:
    """The per-test check of `dagz.use_check` for asyncpg: before `execute` (simple queries) and
    `_get_statement` (every other statement: fetch*, executemany, prepare, cursors) of a
    connection on a rerouted database, so a pooled connection is prepared again in a later test.
    Installed at the first connect (once)."""
    from asyncpg import connection

    cls = connection.Connection
    if _wrapped(cls.execute):
        return
    for name in ("execute", "_get_statement"):
        original = getattr(cls, name)

        def make(original: Any) -> Any:
            @functools.wraps(original)
            async def hooked(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                if not (isinstance(query, str) and _ENDS_TRANSACTION.fullmatch(query)):
                    _asyncpg_before_statement(self)
                return await original(self, query, *args, **kwargs)

            setattr(hooked, _MARK, True)
            return hooked

        setattr(cls, name, make(original))


def _asyncpg_before_statement(conn: Any) -> None:
    db = getattr(getattr(conn, "_params", None), "database", None)
    if not db or db not in PG_CONFIG._rerouted:
        return
    msg = use_check.before_statement(_shim.ENGINE_POSTGRES, db, _ASYNCPG_SEEN.get(conn, -1))
    if msg:
        raise DagzError(msg)
    _ASYNCPG_SEEN[conn] = use_check.generation()


def _asyncpg_settings(addrs: Any, params: Any) -> dict[str, str]:
    """libpq-style settings of an asyncpg connect: its first address, user, password, sslmode."""
    host = port = None
    if addrs:
        first = addrs[0]
        if isinstance(first, tuple) and len(first) >= 2:
            host, port = first[0], first[1]
        elif isinstance(first, str):  # a Unix socket path: directory and port suffix
            host = os.path.dirname(first)
            port = first.rsplit(".", 1)[-1] if first.rsplit(".", 1)[-1].isdigit() else None
    password = params.password if isinstance(params.password, str) else None
    mode = getattr(getattr(params, "sslmode", None), "name", None)
    return settings_of(host=host, port=port, user=params.user, password=password, sslmode=mode)


def _pymysql_settings(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, str]:
    """The server settings of `pymysql.connect(host, user, password, database, …)`."""
    positional = dict(zip(("host", "user", "passwd"), args[:3], strict=False))
    password = kwargs.get("password", kwargs.get("passwd", positional.get("passwd")))
    return settings_of(
        host=kwargs.get("host", positional.get("host")),
        user=kwargs.get("user", positional.get("user")),
        passwd=password.decode() if isinstance(password, bytes) else password,
        port=kwargs.get("port"),
        unix_socket=kwargs.get("unix_socket"),
    )


def _pymysql_conn_settings(conn: Any) -> dict[str, str]:
    password = getattr(conn, "password", None)
    return settings_of(
        host=getattr(conn, "host", None),
        user=getattr(conn, "user", None),
        passwd=password.decode() if isinstance(password, bytes) else password,
        port=getattr(conn, "port", None),
        unix_socket=getattr(conn, "unix_socket", None),
    )


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
        settings = _pymysql_settings(args, kwargs)
        for key in ("database", "db"):
            if kwargs.get(key):
                kwargs[key] = _reroute(MYSQL_CONFIG, kwargs[key], settings)
        # PyMySQL's positional order: host, user, password, database
        if len(args) >= 4 and args[3]:
            args = (*args[:3], _reroute(MYSQL_CONFIG, args[3], settings), *args[4:])
        init(self, *args, **kwargs)
        _pymysql_note(self, kwargs.get("database") or kwargs.get("db") or "", args)

    @functools.wraps(select_db)
    def _select_db(self: Any, db: str) -> Any:
        new = _reroute(MYSQL_CONFIG, db, _pymysql_conn_settings(self)) if db else db
        result = select_db(self, new)
        _pymysql_note(self, new if new != db else "")
        return result

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

        def run(statement: str) -> Any:
            query(self, statement)
            return self._result.rows or ()

        new = _use_target(data, _pymysql_conn_settings(self), run)
        if new is None:
            _pymysql_before_statement(self)
        else:
            _pymysql_note(self, _shim.mysql_statement(new)[1])
        return query(self, sql if new is None else new, unbuffered)

    for fn in (__init__, _select_db, _query):
        setattr(fn, _MARK, True)
    cls.__init__ = __init__
    cls.select_db = _select_db
    cls.query = _query


def _pymysql_note(conn: Any, new: str, args: tuple[Any, ...] = ()) -> None:
    """Remembers on a PyMySQL connection the rerouted database it is on ("": none), prepared in
    this test (`dagz.use_check`: a pooled connection is prepared again in a later test)."""
    if not new and len(args) >= 4:
        new = args[3] or ""
    rerouted = bool(new) and new in MYSQL_CONFIG._rerouted
    conn._dagz_use = (new, use_check.generation()) if rerouted else None


def _pymysql_before_statement(conn: Any) -> None:
    """The per-test check of `dagz.use_check` for a PyMySQL statement."""
    use = getattr(conn, "_dagz_use", None)
    if use is None:
        return
    msg = use_check.before_statement(_shim.ENGINE_MYSQL, use[0], use[1])
    if msg:
        from pymysql.err import OperationalError

        raise OperationalError(2000, msg)
    conn._dagz_use = (use[0], use_check.generation())


def _rerouting_here() -> bool:
    """Whether a MySQL connect from this thread / task would be rerouted at all."""
    return (
        MYSQL_CONFIG.configured
        and STATE.reroute
        and not MYSQL_CONFIG.disabled_here()
        and not _bypass.is_bypassed()
        and not _callbacks.owned_by_callback()
    )


def _use_target(
    data: bytes, settings: Mapping[str, str], run: _pycalls.Run | None = None
) -> bytes | None:
    """The MySQL hooks' rule (the shim's classifier) applied to one PyMySQL statement: the
    statement to send instead (None: unchanged). A single `USE` is rewritten exactly; a statement
    that could change the database in a way dagz cannot rewrite (`USE` among several statements,
    inside EXECUTE IMMEDIATE / PREPARE ... FROM, ...) raises DagzError when its target would be
    rerouted. A CALL: the procedures' bodies are read with `run` first (`_pycalls`)."""
    try:
        kind, name = _shim.mysql_statement(data)
        if kind == _shim.STMT_CALL and run is not None and _rerouting_here():

            def switches(kind: int, target: str) -> bool:
                return not target or _reroute(MYSQL_CONFIG, target, settings) != target

            _pycalls.check(name, run, switches)
        if kind in (_shim.STMT_OTHER, _shim.STMT_CALL):
            return None
        new = _reroute(MYSQL_CONFIG, name, settings) if name else ""
        if kind == _shim.STMT_USE:
            return None if new == name else _shim.mysql_rewrite_statement(data, new)
        if (name and new == name) or (not name and not _rerouting_here()):
            return None
        _shim.mysql_rewrite_statement(data, new)  # raises with the refusal
    except _shim.ShimError as exc:
        raise DagzError(str(exc)) from None
    raise DagzError("dagz: PyMySQL: statement refused")


def install_adbc_postgresql() -> None:
    """The ADBC PostgreSQL driver links libpq statically (the shim cannot see it): rewrite the
    URI of `adbc_driver_postgresql.connect`, which its DB-API `connect` and the low-level
    `AdbcDatabase` both go through."""
    try:
        import adbc_driver_postgresql as adbc
    except ImportError:
        return
    original = adbc.connect
    if _wrapped(original):
        return

    @functools.wraps(original)
    def hook(uri: str, *args: Any, **kwargs: Any) -> Any:
        if isinstance(uri, str) and (_shim.PRELOADED or PG_CONFIG.configured):
            uri = _rewrite_conninfo(uri)
        return original(uri, *args, **kwargs)

    setattr(hook, _MARK, True)
    adbc.connect = hook


#: The Python-level hooks of each family's drivers (engine id -> installers).
_FAMILY_HOOKS = {
    _shim.ENGINE_POSTGRES: (install_psycopg_python, install_asyncpg, install_adbc_postgresql),
    _shim.ENGINE_MYSQL: (install_pymysql,),
}


def install_family(engine: int) -> None:
    """Every installed driver of the family gets its hook (a driver not installed is skipped),
    whatever the conftest imported and in whichever order."""
    for install in _FAMILY_HOOKS.get(engine, ()):
        install()
