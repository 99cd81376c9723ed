"""MySQL/MariaDB connections: the driver (MySQLdb (mysqlclient) if importable, else PyMySQL, with
``ssl_disabled=True`` unless the caller passed SSL settings: PyMySQL builds an SSL context on every
connect otherwise, ~50 ms), connect, errors, quoting."""

from __future__ import annotations

import re
import weakref
from contextlib import AbstractContextManager
from typing import Any

from dagz._bypass import hard_bypass
from dagz._dbapi import driver
from dagz.engines.base import DbConnection, opened, quoted, redact
from dagz.errors import EngineError

_SSL_KWARGS = frozenset(
    {
        "ssl",
        "ssl_ca",
        "ssl_cert",
        "ssl_key",
        "ssl_key_password",
        "ssl_disabled",
        "ssl_verify_cert",
        "ssl_verify_identity",
        "ssl_mode",
    }
)


def _driver() -> tuple[str, Any]:
    """(name, module) of the driver to use."""
    return driver("MySQL", "mysqlclient (MySQLdb) or PyMySQL", "MySQLdb", "pymysql")


def _open(db: str | None, multi: bool, user_kwargs: dict[str, object]) -> Any:
    kwargs = dict(user_kwargs)
    kwargs.pop("db", None)
    kwargs.pop("database", None)
    kwargs.pop("autocommit", None)
    password = kwargs.pop("password", None)
    passwd = kwargs.pop("passwd", None)
    if password is None:
        password = passwd
    kwargs.setdefault("charset", "utf8mb4")
    name, mod = _driver()
    if name == "MySQLdb":
        if db is not None:
            kwargs["db"] = db
        if password is not None:
            kwargs["passwd"] = password
        # mysqlclient enables multi-statements by default; leave the user's choice otherwise.
        if multi:
            kwargs["multi_statements"] = True
    else:
        if db is not None:
            kwargs["database"] = db
        if password is not None:
            kwargs["password"] = password
        if not _SSL_KWARGS.intersection(kwargs):
            kwargs["ssl_disabled"] = True
        if multi:
            from pymysql.constants import CLIENT

            kwargs["client_flag"] = int(kwargs.get("client_flag", 0)) | CLIENT.MULTI_STATEMENTS
    with hard_bypass():
        conn = mod.connect(autocommit=True, **kwargs)
    _OWN.add(conn)
    return conn


#: The connections dagz itself has open in this process (`cloning.end_sessions` never ends one
#: of them: a rebuild's own earlier connection may still have the target as its database).
_OWN: weakref.WeakSet[Any] = weakref.WeakSet()


def sessions_in(db_literal: str, columns: str = "ID") -> str:
    """``SELECT columns`` of the other sessions whose current database is `db_literal` (an SQL
    literal or a ``%s`` placeholder: the text has no other ``%``). A session that is only
    reading the catalog is not one of them: while MariaDB fills an information_schema table
    (TRIGGERS, VIEWS, …) it switches the reading session's database to each schema it reads, so
    PROCESSLIST shows a session reading the triggers of any schema as "in" each database it
    passes through (one was ended by a drop of a database it never used)."""
    return (
        f"SELECT {columns} FROM information_schema.PROCESSLIST"
        f" WHERE DB = {db_literal} AND ID <> CONNECTION_ID()"
        " AND NOT (COMMAND = 'Query' AND (COALESCE(STATE, '') = 'Filling schema table'"
        " OR LOCATE('information_schema', LOWER(COALESCE(INFO, ''))) > 0))"
    )


def own_session_ids() -> set[int]:
    """Server session ids of dagz's own open connections in this process (no round trip)."""
    ids = set()
    for conn in list(_OWN):
        try:
            if conn.open:
                ids.add(int(conn.thread_id()))
        except Exception:
            continue
    return ids


def connect(db: str | None, /, **connect_kwargs: object) -> Any:
    """An autocommit connection (to `db`, or to no database when None), rerouting bypassed.

    `connect_kwargs` are the user's; both ``db``/``database`` and ``passwd``/``password``
    spellings are accepted, `db` wins over any database among them.
    """
    return _open(db, False, connect_kwargs)


def _connection(
    db: str | None, what: str, connect_kwargs: dict[str, object]
) -> AbstractContextManager[DbConnection]:
    """A multi-statement connection (to `db`, or to no database when None) inside
    `hard_bypass`, closed at the end; connect errors become EngineError."""
    where = f"to {db!r}" if db else "to the server"
    return opened(
        lambda: _open(db, True, connect_kwargs),
        lambda exc: _error(f"{what}: cannot connect {where}", exc, connect_kwargs),
    )


def _one_line(exc: BaseException, connect_kwargs: dict[str, object]) -> str:
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        msg = f"({args[0]}) {args[1]}"
    else:
        msg = str(exc) or type(exc).__name__
    return redact(" ".join(msg.split()), connect_kwargs)


def _error(what: str, exc: BaseException, connect_kwargs: dict[str, object]) -> EngineError:
    return EngineError(f"dagz: {what}: {_one_line(exc, connect_kwargs)}")


def _errno(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def quote_ident(name: str) -> str:
    """A MySQL identifier in backticks (`` ` `` doubled)."""
    return quoted(name, "`")


def _literal(conn: DbConnection, value: str) -> str:
    """A string literal escaped by the driver (which honours NO_BACKSLASH_ESCAPES)."""
    # PyMySQL: `escape` (its `literal` alias is deprecated); MySQLdb: `literal`.
    method = "escape" if type(conn).__module__.startswith("pymysql") else "literal"
    text = getattr(conn, method)(value)
    return text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else str(text)


def _q(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def _server_info(conn: DbConnection) -> str:
    method = "get_server_info"  # both drivers; not part of DB-API
    info = getattr(conn, method)()
    return info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)


def _is_mariadb(conn: DbConnection) -> bool:
    return "mariadb" in _server_info(conn).lower()


def _supports_stamps(conn: DbConnection) -> bool:
    """Database comments (the stamp) exist from MariaDB 10.5 on; MySQL has none."""
    # PyMySQL shows MariaDB's "5.5.5-" compatibility prefix, Connector/C strips it.
    m = re.search(r"(\d+)\.(\d+)\.\d+-MariaDB", _server_info(conn), re.IGNORECASE)
    return m is not None and (int(m[1]), int(m[2])) >= (10, 5)
