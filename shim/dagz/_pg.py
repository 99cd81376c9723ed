"""PostgreSQL utilities behind `truncate` and `create_worker_init` (SPEC §3).

Every connection opened here is made inside `dagz._bypass.hard_bypass()`, so the shim never
reroutes dagz's own admin/clone connections. Driver: psycopg (3) if importable, else psycopg2.

Costs that shaped the methods (db-cost-facts.md):

* rows are found with the tables themselves (one ``SELECT`` over ``EXISTS (SELECT 1 FROM t)`` for
  all tables), never with the statistics views, which lag behind other sessions' writes;
* only the tables that hold rows are emptied, by one ``DELETE`` statement (``TRUNCATE … CASCADE``
  must also empty every table referencing them and costs 6 to 66 ms against ~1.5 ms; it is kept for
  tables where DELETE would differ: user ON DELETE triggers, row-level security, partitions);
* cloning is ``CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY``; concurrent clones of one
  template succeed unless some session is connected to the template itself.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

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


class DbCursor(Protocol):
    """The part of a DB-API cursor used here (psycopg, psycopg2)."""

    @property
    def description(self) -> object: ...

    def execute(self, query: str, params: Sequence[object] | None = None, /) -> object: ...

    def fetchall(self) -> Sequence[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class DbConnection(Protocol):
    """The part of a DB-API connection used here."""

    def cursor(self) -> DbCursor: ...

    def close(self) -> None: ...


class PgUtilError(RuntimeError):
    """A `dagz: …` failure of a PostgreSQL utility (one line, names the database, no password)."""


# --------------------------------------------------------------------------------------------
# connections


def _driver() -> tuple[str, Any]:
    """(name, module) of the driver to use."""
    try:
        import psycopg

        return "psycopg", psycopg
    except ImportError:
        pass
    try:
        import psycopg2

        return "psycopg2", psycopg2
    except ImportError:
        raise PgUtilError(
            "dagz: PostgreSQL utilities need psycopg (3) or psycopg2; neither is importable"
        ) from None


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


@contextlib.contextmanager
def _connection(
    dbname: str, what: str, connect_kwargs: dict[str, object]
) -> Iterator[DbConnection]:
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
            except PgUtilError:
                raise
            except Exception as exc:
                missing = _sqlstate(exc) == _INVALID_CATALOG or (
                    f'database "{name}" does not exist' in str(exc)
                )
                if missing and i + 1 < len(candidates):
                    continue
                raise _error(f"{what}: cannot connect to {name!r}", exc, connect_kwargs) from exc
            try:
                yield conn
            finally:
                with contextlib.suppress(Exception):
                    conn.close()
            return
    raise PgUtilError(f"dagz: {what}: no maintenance database to connect to")


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
    msg = " ".join([first, *details])
    for key in ("password", "passwd"):
        secret = connect_kwargs.get(key)
        if secret:
            msg = msg.replace(str(secret), "***")
    return msg


def _error(what: str, exc: BaseException, connect_kwargs: dict[str, object]) -> PgUtilError:
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
# root), and the sequences that were used (`pg_sequences.last_value IS NOT NULL`: `nextval` was
# called and no restart since) with their start value and the table owning them (serial/identity),
# if any. System schemas, temporary schemas and extension members (e.g. PostGIS's
# spatial_ref_sys) are left alone. Columns: kind ('t' table, 's' sequence), schema, name, oid,
# owner table oid (sequences), start value (sequences), DELETE-unsafe (tables: see `truncate`).
_DISCOVER_SQL = """
SELECT 't' AS kind, n.nspname, c.relname, c.oid::bigint, NULL::bigint, NULL::bigint,
       (c.relkind = 'p' OR c.relrowsecurity
        OR EXISTS (SELECT 1 FROM pg_trigger t
                    WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled <> 'D'
                      AND (t.tgtype & 8) <> 0)) AS needs_truncate
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
UNION ALL
SELECT 's', s.schemaname, s.sequencename, c.oid::bigint, owner.refobjid::bigint, s.start_value,
       false
  FROM pg_sequences s
  JOIN pg_namespace n ON n.nspname = s.schemaname
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename
  LEFT JOIN pg_depend owner
         ON owner.classid = 'pg_class'::regclass AND owner.objid = c.oid
        AND owner.refclassid = 'pg_class'::regclass AND owner.deptype IN ('a', 'i')
 WHERE s.last_value IS NOT NULL
   AND s.schemaname <> 'information_schema' AND s.schemaname NOT LIKE 'pg\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
ORDER BY 1 DESC, 2, 3
"""


def _rows_query(tables: Sequence[tuple[str, str]]) -> str:
    """Round trip 2: one SELECT returning the index of every table that holds a row."""
    parts = [
        f"SELECT {i} WHERE EXISTS (SELECT 1 FROM {_qualified(schema, name)})"
        for i, (schema, name) in enumerate(tables)
    ]
    return "\nUNION ALL ".join(parts)


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


def _empty_statements(
    with_rows: Sequence[tuple[str, str]], use_truncate: bool, sequences: Sequence[tuple[int, int]]
) -> list[str]:
    """Round trip 3: empties `with_rows` and restarts `sequences` ((oid, start) pairs)."""
    statements = []
    if with_rows and use_truncate:
        targets = ", ".join(_qualified(s, n) for s, n in with_rows)
        statements.append(f"TRUNCATE {targets} RESTART IDENTITY CASCADE")
    elif with_rows:
        # One statement: the foreign key checks (AFTER triggers) run at its end, when every
        # table is empty, so no order is needed, cycles and RESTRICT included.
        ctes = ", ".join(
            f"d{i} AS (DELETE FROM {_qualified(s, n)})" for i, (s, n) in enumerate(with_rows)
        )
        statements.append(f"WITH {ctes} SELECT 1")
    if sequences:
        calls = ", ".join(
            f"setval({oid}::oid::regclass, {start}, false)" for oid, start in sequences
        )
        statements.append(f"SELECT {calls}")
    return statements


def truncate(db_name: str, **connect_kwargs: object) -> list[str]:
    """Empties every user table of `db_name` that holds rows and restarts used sequences.

    Returns the tables emptied (``schema.table``, schema omitted for ``public``), in catalog
    order. Migration bookkeeping tables (`KEEP_TABLES`) and views are never touched.

    Method: the tables holding rows are emptied by one ``DELETE`` statement (a data-modifying
    ``WITH`` per table) — for a few small tables far cheaper than ``TRUNCATE``, which must also
    empty (CASCADE) every table referencing them, rows or not, and replaces each table's files.
    ``TRUNCATE … RESTART IDENTITY CASCADE`` is used instead when one of those tables has an
    enabled user ``ON DELETE`` trigger (DELETE would fire it, e.g. an audit trigger refilling a
    table), row-level security (DELETE would only see some rows) or partitions. Every used
    sequence (identity/serial of any table but the kept ones, and free-standing ones) is set
    back to its start value: this also covers a table that is empty again but whose identity
    advanced.
    """
    what = f"truncate of PostgreSQL database {db_name!r} failed"
    with _connection(db_name, what, connect_kwargs) as conn:
        try:
            found = _fetch(conn, _DISCOVER_SQL)
        except Exception as exc:
            raise _error(f"{what} (listing tables)", exc, connect_kwargs) from exc
        tables: list[tuple[str, str]] = []
        unsafe: set[tuple[str, str]] = set()
        kept_oids: set[int] = set()
        sequences: list[tuple[int, int, int | None]] = []
        for kind, schema, name, oid, owner, start, needs_truncate in found:
            if kind == "s":
                sequences.append((int(oid), int(start), None if owner is None else int(owner)))
            elif name in KEEP_TABLES:
                kept_oids.add(int(oid))
            else:
                tables.append((schema, name))
                if needs_truncate:
                    unsafe.add((schema, name))
        with_rows: list[tuple[str, str]] = []
        if tables:
            try:
                hits = _fetch(conn, _rows_query(tables))
            except Exception as exc:
                raise _error(f"{what} (finding tables with rows)", exc, connect_kwargs) from exc
            with_rows = [tables[i] for i in sorted(int(row[0]) for row in hits)]
        restart = [(oid, start) for oid, start, owner in sequences if owner not in kept_oids]
        statements = _empty_statements(with_rows, bool(unsafe.intersection(with_rows)), restart)
        if statements:
            # One round trip, one transaction.
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


def drop(db_name: str, **connect_kwargs: object) -> None:
    """``DROP DATABASE IF EXISTS db_name WITH (FORCE)``."""
    what = f"dropping PostgreSQL database {db_name!r} failed"
    with _maintenance((db_name,), what, connect_kwargs) as conn:
        try:
            _drop(conn, db_name)
        except Exception as exc:
            raise _error(what, exc, connect_kwargs) from exc


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


def clone(base: str, target: str, **connect_kwargs: object) -> str:
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
