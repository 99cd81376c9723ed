"""PostgreSQL utilities behind `truncate` and `create_worker_init` (SPEC §3).

Every connection opened here is made inside `dagz._bypass.hard_bypass()`, so the shim never
reroutes dagz's own admin/clone connections. Driver: psycopg (3) if importable, else psycopg2.

Costs that shaped the methods (db-cost-facts.md):

* rows are found with the tables themselves (one ``SELECT`` over ``EXISTS (SELECT 1 FROM t)`` for
  all tables), never with the statistics views, which lag behind other sessions' writes;
* only the tables that hold rows are emptied, by one ``TRUNCATE … RESTART IDENTITY CASCADE``;
* cloning is ``CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY``; concurrent clones of one
  template succeed unless some session is connected to the template itself.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from dagz._bypass import hard_bypass

#: Migration bookkeeping tables: never emptied, their sequences never reset.
KEEP_TABLES = frozenset({"alembic_version", "django_migrations", "schema_migrations"})

#: Databases the admin connection of `clone`/`drop` may use, in order of preference.
_MAINTENANCE_DBS = ("postgres", "template1")

#: SQLSTATE 55006 object_in_use: "source database … is being accessed by other users".
_OBJECT_IN_USE = "55006"
#: SQLSTATE 3D000 invalid_catalog_name: the database does not exist.
_INVALID_CATALOG = "3D000"

#: Total time `clone` keeps retrying while the template is in use (PostgreSQL itself waits up to
#: 5 s inside each CREATE DATABASE for other sessions to leave the template).
CLONE_RETRY_SECONDS = 10.0

#: `truncate` waits at most this long for table locks (a leaked transaction of the test would
#: otherwise block it forever).
LOCK_TIMEOUT = "10s"


class PgUtilError(RuntimeError):
    """A `dagz: …` failure of a PostgreSQL utility (one line, names the database, no password)."""


# --------------------------------------------------------------------------------------------
# connections


def _driver() -> tuple[str, Any]:
    try:
        import psycopg  # noqa: PLC0415 - optional driver

        return "psycopg", psycopg
    except ImportError:
        pass
    try:
        import psycopg2  # noqa: PLC0415 - optional driver

        return "psycopg2", psycopg2
    except ImportError:
        raise PgUtilError(
            "dagz: PostgreSQL utilities need psycopg (3) or psycopg2; neither is importable"
        ) from None


def connect(dbname: str, **connect_kwargs: Any) -> Any:
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


@contextlib.contextmanager
def _connection(
    dbname: str, what: str, connect_kwargs: dict[str, Any]
) -> Iterator[Any]:
    """`connect` inside `hard_bypass`, closed at the end; connect errors become PgUtilError."""
    with hard_bypass():
        try:
            conn = connect(dbname, **connect_kwargs)
        except PgUtilError:
            raise
        except Exception as exc:
            raise _error(f"{what}: cannot connect to {dbname!r}", exc, connect_kwargs) from exc
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.close()


def _maintenance(
    avoid: Sequence[str], what: str, connect_kwargs: dict[str, Any]
) -> contextlib.AbstractContextManager[Any]:
    """The admin connection for CREATE/DROP DATABASE: ``postgres`` (or ``template1`` when
    ``postgres`` is one of the databases being created/dropped/cloned)."""
    for name in _MAINTENANCE_DBS:
        if name not in avoid:
            return _connection(name, what, connect_kwargs)
    raise PgUtilError(f"dagz: {what}: no maintenance database to connect to")


def _server_version(conn: Any) -> int:
    info = getattr(conn, "info", None)
    version = getattr(info, "server_version", None)
    if version is None:
        version = getattr(conn, "server_version", 0)
    return int(version or 0)


def _sqlstate(exc: BaseException) -> str | None:
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def _one_line(exc: BaseException, connect_kwargs: dict[str, Any]) -> str:
    """The first line of a driver error (psycopg2 adds DETAIL/HINT lines), password removed."""
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else type(exc).__name__
    details = [ln.strip() for ln in text.splitlines()[1:] if ln.strip().startswith("DETAIL:")]
    msg = " ".join([first, *details])
    for key in ("password", "passwd"):
        secret = connect_kwargs.get(key)
        if secret:
            msg = msg.replace(str(secret), "***")
    return msg


def _error(what: str, exc: BaseException, connect_kwargs: dict[str, Any]) -> PgUtilError:
    return PgUtilError(f"dagz: {what}: {_one_line(exc, connect_kwargs)}")


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier in double quotes (``"`` doubled)."""
    if "\x00" in name:
        raise PgUtilError(f"dagz: identifier {name!r} contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def _qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


# --------------------------------------------------------------------------------------------
# truncate

# Round trip 1: the user tables (plain and partitioned roots; partitions are covered by their
# root), and the sequences that were used (`last_value IS NOT NULL`: `nextval` was called and no
# RESTART since) with the table owning them (serial/identity), if any. System schemas, temporary
# schemas and extension members (e.g. PostGIS's spatial_ref_sys) are left alone. `kind` is 't'
# for a table, 's' for a sequence.
_DISCOVER_SQL = """
SELECT 't' AS kind, n.nspname, c.relname, c.oid::bigint, NULL::bigint
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
UNION ALL
SELECT 's', s.schemaname, s.sequencename, NULL, owner.refobjid::bigint
  FROM pg_sequences s
  LEFT JOIN LATERAL (
        SELECT d.refobjid FROM pg_depend d
         WHERE d.classid = 'pg_class'::regclass
           AND d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
         LIMIT 1) owner ON true
 WHERE s.last_value IS NOT NULL
   AND s.schemaname <> 'information_schema' AND s.schemaname NOT LIKE 'pg\\_%'
"""


def _rows_query(tables: Sequence[tuple[str, str]]) -> str:
    """Round trip 2: one SELECT returning the index of every table that holds a row."""
    parts = [
        f"SELECT {i} WHERE EXISTS (SELECT 1 FROM {_qualified(schema, name)})"
        for i, (schema, name) in enumerate(tables)
    ]
    return "\nUNION ALL ".join(parts)


def _fetch(conn: Any, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return list(cur.fetchall())
    finally:
        cur.close()


def _execute(conn: Any, sql: str, params: Sequence[Any] | None = None) -> None:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
    finally:
        cur.close()


def truncate(db_name: str, **connect_kwargs: Any) -> list[str]:
    """Empties every user table of `db_name` that holds rows and resets used sequences.

    Returns the tables emptied (``schema.table``, schema omitted for ``public``), in catalog
    order. Migration bookkeeping tables (`KEEP_TABLES`) and views are never touched.
    """
    what = f"truncate of PostgreSQL database {db_name!r} failed"
    with _connection(db_name, what, connect_kwargs) as conn:
        try:
            found = _fetch(conn, _DISCOVER_SQL)
        except Exception as exc:
            raise _error(f"{what} (listing tables)", exc, connect_kwargs) from exc
        tables: list[tuple[str, str]] = []
        table_oid: dict[int, tuple[str, str]] = {}
        sequences: list[tuple[str, str, int | None]] = []
        for kind, schema, name, oid, owner in found:
            if kind == "t":
                table_oid[int(oid)] = (schema, name)
                if name not in KEEP_TABLES:
                    tables.append((schema, name))
            else:
                sequences.append((schema, name, None if owner is None else int(owner)))
        with_rows: list[tuple[str, str]] = []
        if tables:
            try:
                hits = _fetch(conn, _rows_query(tables))
            except Exception as exc:
                raise _error(f"{what} (finding tables with rows)", exc, connect_kwargs) from exc
            with_rows = [tables[i] for i in sorted(int(row[0]) for row in hits)]
        emptied = set(with_rows)
        # RESTART IDENTITY resets the sequences owned by the truncated tables; every other used
        # sequence (of an empty table whose rows were deleted, or a free-standing one) is
        # restarted explicitly. Sequences of the kept bookkeeping tables are left alone.
        restart: list[tuple[str, str]] = []
        for schema, name, owner in sequences:
            owner_table = table_oid.get(owner) if owner is not None else None
            if owner_table is not None and (
                owner_table[1] in KEEP_TABLES or owner_table in emptied
            ):
                continue
            restart.append((schema, name))
        statements = []
        if with_rows:
            targets = ", ".join(_qualified(s, n) for s, n in with_rows)
            statements.append(f"TRUNCATE {targets} RESTART IDENTITY CASCADE")
        statements.extend(f"ALTER SEQUENCE {_qualified(s, n)} RESTART" for s, n in restart)
        if statements:
            # One round trip, one transaction: all or nothing.
            sql = f"SET lock_timeout = '{LOCK_TIMEOUT}'; BEGIN; {'; '.join(statements)}; COMMIT"
            try:
                _execute(conn, sql)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    _execute(conn, "ROLLBACK")
                holders = _sessions(conn, db_name) if _sqlstate(exc) == "55P03" else ""
                suffix = f" (other sessions in {db_name!r}: {holders})" if holders else ""
                raise _error(f"{what}{suffix}", exc, connect_kwargs) from exc
    return [n if s == "public" else f"{s}.{n}" for s, n in with_rows]


# --------------------------------------------------------------------------------------------
# clone / drop


def _sessions(conn: Any, db_name: str) -> str:
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


def _drop(conn: Any, db_name: str) -> None:
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


def drop(db_name: str, **connect_kwargs: Any) -> None:
    """``DROP DATABASE IF EXISTS db_name WITH (FORCE)``."""
    what = f"dropping PostgreSQL database {db_name!r} failed"
    with _maintenance((db_name,), what, connect_kwargs) as conn:
        try:
            _drop(conn, db_name)
        except Exception as exc:
            raise _error(what, exc, connect_kwargs) from exc


def _exists(conn: Any, db_name: str) -> bool:
    return bool(_fetch(conn, "SELECT 1 FROM pg_database WHERE datname = %s", (db_name,)))


def _create_retrying(
    conn: Any, sql: str, source: str, what: str, connect_kwargs: dict[str, Any]
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


def clone(base: str, target: str, **connect_kwargs: Any) -> str:
    """Creates `target` as a copy of `base` (schema and data); "cloned", or "empty" when `base`
    does not exist (then `target` is created empty). A leftover `target` is dropped first."""
    what = f"cloning PostgreSQL database {base!r} into {target!r} failed"
    with _maintenance((base, target), what, connect_kwargs) as conn:
        try:
            _drop(conn, target)
            base_exists = _exists(conn, base)
            version = _server_version(conn)
        except Exception as exc:
            raise _error(what, exc, connect_kwargs) from exc
        if not base_exists:
            # The implicit template is template1: other sessions there make this fail the same way.
            _create_retrying(
                conn,
                f"CREATE DATABASE {quote_ident(target)}",
                "template1",
                f"creating empty PostgreSQL database {target!r} ({base!r} does not exist) failed",
                connect_kwargs,
            )
            return "empty"
        strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""
        sql = f"CREATE DATABASE {quote_ident(target)} TEMPLATE {quote_ident(base)}{strategy}"
        _create_retrying(conn, sql, base, what, connect_kwargs)
        return "cloned"
