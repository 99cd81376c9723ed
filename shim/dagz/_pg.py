"""PostgreSQL utilities behind `truncate` and `create_worker_init` (SPEC §3).

Every connection opened here is made inside `dagz._bypass.hard_bypass()`, so the shim never
reroutes dagz's own admin/clone connections. Driver: psycopg (3) if importable, else psycopg2.

Costs that shaped the methods (db-cost-facts.md):

* rows are found with the tables themselves (one ``SELECT`` over ``EXISTS (SELECT 1 FROM t)`` for
  all tables), never with the statistics views, which lag behind other sessions' writes;
* only the tables that hold rows are emptied, by one ``DELETE`` statement (``TRUNCATE … CASCADE``
  must also empty every table referencing them and costs 6 to 66 ms against ~1.5 ms; it is kept for
  tables where DELETE would differ: user ON DELETE triggers, row-level security, partitions);
* cloning is ``CREATE DATABASE … TEMPLATE`` (WAL_LOG, or FILE_COPY when ``fsync`` is off);
  concurrent clones of one template succeed unless some session is connected to the template.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from dagz import _warm
from dagz._bypass import hard_bypass
from dagz._dbapi import first_importable

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
    found = first_importable("psycopg", "psycopg2")
    if found is None:
        raise PgUtilError(
            "dagz: PostgreSQL utilities need psycopg (3) or psycopg2; neither is importable"
        )
    return found


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
    dbname: str, what: str, connect_kwargs: dict[str, object], *, keep: bool = False
) -> Iterator[DbConnection]:
    """`connect` inside `hard_bypass`, closed at the end (or on error only, with `keep`);
    connect errors become PgUtilError."""
    with hard_bypass():
        try:
            conn = connect(dbname, **connect_kwargs)
        except PgUtilError:
            raise
        except Exception as exc:
            raise _error(f"{what}: cannot connect to {dbname!r}", exc, connect_kwargs) from exc
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        if not keep:
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
    key = (threading.get_ident(), db_name, repr(sorted(connect_kwargs.items())))
    conn = _KEPT.pop(key, None)
    if conn is not None:
        try:
            emptied = _truncate_on(conn, db_name, what, connect_kwargs)
        except Exception:
            # The kept session may be gone (database dropped/recreated, server restarted):
            # one more try on a fresh connection decides.
            with contextlib.suppress(Exception):
                conn.close()
        else:
            _KEPT[key] = conn
            return emptied
    with _connection(db_name, what, connect_kwargs, keep=True) as conn:
        emptied = _truncate_on(conn, db_name, what, connect_kwargs)
        _KEPT[key] = conn
    return emptied


#: One connection per (thread, database, connect arguments) kept by `truncate` between tests:
#: a fresh connection costs ~5 ms plus cold catalog caches (~5 ms more per query), several times
#: the emptying itself. Closed at exit; a dead one is replaced on the next call.
_KEPT: dict[tuple[int, str, str], Any] = {}


@atexit.register
def _close_kept() -> None:
    while _KEPT:
        _, conn = _KEPT.popitem()
        with contextlib.suppress(Exception):
            conn.close()


def _truncate_on(
    conn: DbConnection, db_name: str, what: str, connect_kwargs: dict[str, object]
) -> list[str]:
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
        strategy = _clone_strategy(conn, version)
        sql = f"CREATE DATABASE {quote_ident(target)} TEMPLATE {quote_ident(base)}{strategy}"
        _create_retrying(conn, sql, base, what, connect_kwargs)
        return "cloned"


# --------------------------------------------------------------------------------------------
# warm start (issue 7): fingerprint, keep, rebuild, stamps — see dagz._warm for the design.

# The catalog part of the fingerprint, as one text per object (`items(k, t)`), hashed by the
# server. Every object of the user schemas (not information_schema, pg_*, temporary schemas) that
# is not an extension member: relations with their options, owner and privileges, columns
# (position, name, type and typmod, not-null, identity, generated, collation, default),
# constraints and indexes (their server-made definitions), view and trigger definitions, rules,
# policies, sequence parameters and ownership, functions (full definitions), types (enum labels,
# domains, ranges), extensions and their versions, extended statistics, event triggers, the
# database's encoding and locale. Names, never OIDs, except where a base and its file copy agree
# by construction (column positions). Free text goes through %L (quoted, NULL as NULL): no two
# different catalogs give the same text.
_HEAD_CTE = """
WITH ns AS (
  SELECT oid, nspname FROM pg_namespace
   WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'
),
extm AS (
  SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
),
rel AS (
  SELECT c.oid, c.relkind, format('%I.%I', n.nspname, c.relname) AS qn
    FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
     AND NOT EXISTS (SELECT 1 FROM extm
                      WHERE extm.classid = 'pg_class'::regclass AND extm.objid = c.oid)
)
"""
_FINGERPRINT_CTE = (
    _HEAD_CTE
    + """,
items(k, t) AS (
  SELECT 'database', format('%s %L %L', pg_encoding_to_char(d.encoding), d.datcollate,
         d.datctype)
    FROM pg_database d WHERE d.datname = current_database()
  UNION ALL
  SELECT 'schema', format('%I %I %L', n.nspname, pg_get_userbyid(n.nspowner), n.nspacl)
    FROM pg_namespace n JOIN ns ON ns.oid = n.oid
  UNION ALL
  SELECT 'extension', format('%I %L %I', e.extname, e.extversion, n.nspname)
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
  UNION ALL
  SELECT 'relation', format('%s %s %s %L %s %s %s %I %L %L %L', r.qn, c.relkind,
         c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
         c.relreplident, pg_get_userbyid(c.relowner), c.relacl,
         CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
         pg_get_expr(c.relpartbound, c.oid))
    FROM rel r JOIN pg_class c ON c.oid = r.oid
  UNION ALL
  SELECT 'inherits', format('%s %s %s', r.qn, i.inhseqno, i.inhparent::regclass)
    FROM pg_inherits i JOIN rel r ON r.oid = i.inhrelid
  UNION ALL
  SELECT 'column', format('%s %s %I %I.%I %s %s %s %L %L %L %L %L', r.qn, a.attnum, a.attname,
         tn.nspname, t.typname, a.atttypmod, a.attndims, a.attnotnull, a.attidentity,
         a.attgenerated, CASE WHEN a.attcollation <> t.typcollation THEN co.collname END,
         pg_get_expr(ad.adbin, ad.adrelid), a.attacl)
    FROM pg_attribute a JOIN rel r ON r.oid = a.attrelid
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_namespace tn ON tn.oid = t.typnamespace
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint', format('%s %I %s %L', coalesce(r.qn, co.contypid::regtype::text),
         co.conname, co.contype, pg_get_constraintdef(co.oid))
    FROM pg_constraint co JOIN ns ON ns.oid = co.connamespace
    LEFT JOIN rel r ON r.oid = co.conrelid
   WHERE r.oid IS NOT NULL OR co.contypid <> 0
  UNION ALL
  SELECT 'index', format('%L %s %s %L', pg_get_indexdef(i.indexrelid), i.indisclustered,
         i.indisreplident, ic.reloptions)
    FROM pg_index i JOIN rel r ON r.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
  UNION ALL
  SELECT 'view', format('%s %L', r.qn, pg_get_viewdef(r.oid))
    FROM rel r WHERE r.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'trigger', format('%L %s', pg_get_triggerdef(tg.oid), tg.tgenabled)
    FROM pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal
  UNION ALL
  SELECT 'rule', format('%L %s', pg_get_ruledef(rw.oid), rw.ev_enabled)
    FROM pg_rewrite rw JOIN rel r ON r.oid = rw.ev_class WHERE rw.rulename <> '_RETURN'
  UNION ALL
  SELECT 'policy', format('%s %I %s %s %L %L %L', r.qn, p.polname, p.polcmd, p.polpermissive,
         (SELECT string_agg(CASE WHEN x = 0 THEN 'public' ELSE pg_get_userbyid(x)::text END,
                            ',' ORDER BY 1)
            FROM unnest(p.polroles) x),
         pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy p JOIN rel r ON r.oid = p.polrelid
  UNION ALL
  SELECT 'sequence', format('%s %s %s %s %s %s %s %s', r.qn, s.seqtypid::regtype, s.seqstart,
         s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle)
    FROM pg_sequence s JOIN rel r ON r.oid = s.seqrelid
  UNION ALL
  SELECT 'owned', format('%s %s %s %s', r.qn, d.refobjid::regclass, d.refobjsubid, d.deptype)
    FROM pg_depend d JOIN rel r ON r.oid = d.objid
   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
     AND r.relkind = 'S' AND d.deptype IN ('a', 'i')
  UNION ALL
  SELECT 'function', format('%I.%I(%s) %s %L %L', n.nspname, p.proname,
         pg_get_function_identity_arguments(p.oid), p.prokind, p.proacl,
         CASE WHEN p.prokind = 'a' THEN pg_get_function_result(p.oid)
              ELSE pg_get_functiondef(p.oid) END)
    FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace
   WHERE NOT EXISTS (SELECT 1 FROM extm
                      WHERE extm.classid = 'pg_proc'::regclass AND extm.objid = p.oid)
  UNION ALL
  SELECT 'type', format('%I.%I %s %L %s %L %L %L', n.nspname, t.typname, t.typtype,
         CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
         t.typnotnull, t.typdefault,
         (SELECT string_agg(quote_literal(e.enumlabel), ',' ORDER BY e.enumsortorder)
            FROM pg_enum e WHERE e.enumtypid = t.oid),
         (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg WHERE rg.rngtypid = t.oid))
    FROM pg_type t JOIN ns n ON n.oid = t.typnamespace
   WHERE t.typtype IN ('b', 'd', 'e', 'r', 'm')
     AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
     AND NOT EXISTS (SELECT 1 FROM extm
                      WHERE extm.classid = 'pg_type'::regclass AND extm.objid = t.oid)
  UNION ALL
  SELECT 'statistics', format('%L', pg_get_statisticsobjdef(s.oid))
    FROM pg_statistic_ext s JOIN ns ON ns.oid = s.stxnamespace
  UNION ALL
  SELECT 'event_trigger', format('%I %s %s %s %L', e.evtname, e.evtevent, e.evtfoid::regproc,
         e.evtenabled, e.evttags)
    FROM pg_event_trigger e
)
"""
)

#: The catalog part of the fingerprint: one md5 over the sorted texts.
_CATALOG_SQL = (
    _FINGERPRINT_CTE
    + """SELECT md5(string_agg(k || ' ' || t, E'\\n' ORDER BY k COLLATE "C", t COLLATE "C"))
  FROM items"""
)

# What dagz must know of a database to restore its rows: the tables (as `truncate` sees them:
# plain tables and partitioned roots, no partitions, no extension members) with their copyable
# columns and the enabled states of their user triggers; the sequences; the foreign keys
# between tables. (Which tables have pages comes with the change token.)
_LISTING_SQL = (
    _HEAD_CTE
    + """,
tbl AS (
  SELECT c.oid, c.relkind, c.relname, format('%I.%I', n.nspname, c.relname) AS qn
    FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
     AND NOT EXISTS (SELECT 1 FROM extm
                      WHERE extm.classid = 'pg_class'::regclass AND extm.objid = c.oid)
)
SELECT 't' AS kind, t.qn AS a, t.relname::text AS b, t.relkind::text AS c,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND a.attgenerated = '' ORDER BY a.attnum)
         || ARRAY(SELECT DISTINCT ':' || tg.tgenabled::text FROM pg_trigger tg
                   WHERE tg.tgrelid = t.oid AND NOT tg.tgisinternal AND tg.tgenabled <> 'D')
         AS cols
  FROM tbl t
UNION ALL
SELECT 's', r.qn, NULL, NULL, NULL FROM rel r WHERE r.relkind = 'S'
UNION ALL
SELECT 'k', child.qn, parent.qn, NULL, NULL
  FROM pg_constraint co JOIN tbl child ON child.oid = co.conrelid
  JOIN tbl parent ON parent.oid = co.confrelid
 WHERE co.contype = 'f' AND co.conrelid <> co.confrelid
"""
)

# The change token of a database: the catalog fingerprint costs 25-60 ms on a fresh backend
# (100 tables: deparsing 300 indexes, 1200 columns…), the token ~10 ms. It is taken in the same
# REPEATABLE READ snapshot as a fingerprint: the snapshot's xmax and the transactions in
# progress (xip) — any transaction whose writes the snapshot does not see has an xid >= xmax or
# in xip — and an md5 of the row counts of the catalogs the fingerprint reads plus of the
# content of pg_class. Later, "no catalog row whose xmin is >= xmax or in xip (inserted or
# updated since), the same counts (nothing deleted), the same pg_class content" proves that the
# catalog is the one that was fingerprinted: then the stamp's catalog md5 is taken as the
# database's, and the catalog fingerprint is computed only when the token does not hold (and
# the stamp's tokens are then refreshed). pg_class is compared by content, not xmin, because
# TRUNCATE (e.g. dagz's truncate for tables with ON DELETE triggers) updates its rows;
# relfilenode, sizes, statistics and freeze horizons are left out of that content. A token
# older than `TOKEN_MAX_AGE` transactions has expired (xids wrap around, old rows get frozen).
_TOKEN_CATALOGS = (
    "pg_namespace",
    "pg_attribute",
    "pg_attrdef",
    "pg_constraint",
    "pg_index",
    "pg_trigger",
    "pg_rewrite",
    "pg_policy",
    "pg_sequence",
    "pg_proc",
    "pg_type",
    "pg_enum",
    "pg_range",
    "pg_collation",
    "pg_extension",
    "pg_inherits",
    "pg_statistic_ext",
    "pg_event_trigger",
    "pg_depend",
)

#: Transactions after which a change token is no longer trusted.
TOKEN_MAX_AGE = 500_000_000

_PG_CLASS_CONTENT = (
    "(SELECT md5(string_agg(concat_ws(' ', c.oid, c.relname, c.relnamespace, c.reltype,"
    " c.relowner, c.relam, c.reltablespace, c.reltoastrelid, c.relkind, c.relpersistence,"
    " c.relnatts, c.relchecks, c.relhasrules, c.relhastriggers, c.relhassubclass,"
    " c.relrowsecurity, c.relforcerowsecurity, c.relispopulated, c.relreplident,"
    " c.relispartition, c.relacl, c.reloptions, c.relpartbound), ',' ORDER BY c.oid))"
    " FROM pg_catalog.pg_class c)"
)


@dataclass(frozen=True)
class _Token:
    """A change token: the snapshot's xmax and the transactions in progress then (64-bit
    txids), and the digest. A catalog row written since has an xmin >= `xmax` or in `xip`."""

    xmax: int
    xip: tuple[int, ...]
    digest: str

    def text(self) -> str:
        xip = f".{'-'.join(map(str, self.xip))}" if self.xip else ""
        return f"{self.xmax}.{self.digest}{xip}"

    @staticmethod
    def parse(text: str | None) -> _Token | None:
        m = re.fullmatch(r"(\d+)\.([0-9a-f]{16})(?:\.(\d+(?:-\d+)*))?", text or "")
        if m is None:
            return None
        xip = tuple(int(x) for x in m[3].split("-")) if m[3] else ()
        return _Token(int(m[1]), xip, m[2])


#: More transactions in progress than this when a token is taken: it is not recorded (too long
#: for a database comment); the next run then fingerprints the catalog.
_TOKEN_MAX_XIP = 32


def _token_sql(since: _Token | None) -> str:
    """(snapshot xmax, transactions in progress, [[rows, rows written since `since`] per
    catalog], pg_class content md5, the user tables with pages) — one scan per catalog."""
    if since is None:
        newer = "false"
    else:
        newer = f"age(xmin) <= age('{since.xmax % (1 << 32)}'::xid)"
        if since.xip:
            xids = ", ".join(f"'{x % (1 << 32)}'::xid" for x in since.xip)
            newer += f" OR xmin = ANY(ARRAY[{xids}])"
    counts = ", ".join(
        f"(SELECT ARRAY[count(*), count(*) FILTER (WHERE {newer})] FROM pg_catalog.{c})"
        for c in _TOKEN_CATALOGS
    )
    return (
        "SELECT txid_snapshot_xmax(s), ARRAY(SELECT txid_snapshot_xip(s)),"
        f" ARRAY[{counts}], {_PG_CLASS_CONTENT}, {_PAGES_SQL} FROM txid_current_snapshot() s"
    )


#: The user tables (plain, partitioned roots) that have pages: only those can hold rows.
_PAGES_SQL = (
    "ARRAY(SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
    " AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
    " AND (c.relkind = 'p' OR pg_relation_size(c.oid) > 0))"
)


def _read_token(conn: DbConnection, since: _Token | None) -> tuple[_Token, bool]:
    """(the database's token now, whether its catalog is unchanged since `since`). Run in the
    snapshot that the caller's other reads use."""
    token, unchanged, _pages = _read_token_pages(conn, since)
    return token, unchanged


def _read_token_pages(conn: DbConnection, since: _Token | None) -> tuple[_Token, bool, set[str]]:
    """`_read_token`, and the user tables that have pages."""
    xmax, xip, counts, pg_class, pages = _fetch(conn, _token_sql(since))[0]
    rows = " ".join(str(int(c[0])) for c in counts)
    digest = hashlib.md5(f"{rows} {pg_class}".encode(), usedforsecurity=False).hexdigest()[:16]
    running = tuple(sorted(int(x) for x in xip or []))
    if len(running) > _TOKEN_MAX_XIP:  # a token that can never hold
        token = _Token(0, (), digest)
    else:
        token = _Token(int(xmax), running, digest)
    unchanged = (
        since is not None
        and since.xmax > 0
        and 0 <= int(xmax) - since.xmax < TOKEN_MAX_AGE
        and sum(int(c[1] or 0) for c in counts) == 0
        and digest == since.digest
    )
    return token, unchanged, {str(x) for x in pages or []}


#: Session settings under which rows are rendered as text for the bookkeeping part of the
#: fingerprint (timestamps of django_migrations.applied must not depend on the client's zone).
_TEXT_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, MDY';"
    " SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1;"
    " SET LOCAL bytea_output = 'hex'"
)


def _literal(text: str) -> str:
    """A string literal (independent of standard_conforming_strings)."""
    if "\x00" in text:
        raise PgUtilError(f"dagz: string {text!r} contains a NUL byte")
    body = text.replace("'", "''")
    if "\\" in body:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return f"'{body}'"


@dataclass
class _Table:
    qn: str  # quoted qualified name
    name: str
    kind: str  # 'r' plain, 'p' partitioned root
    cols: list[str]  # columns COPY moves (not generated), in order
    triggers: str  # enabled states of its user triggers: 'O' (origin), 'A' (always), 'R'
    #: False when its main fork has no page at all (then it holds no row, for certain: no
    #: statistics involved); only the others are read (opening 100 tables costs ~25 ms).
    has_pages: bool = True


@dataclass
class _State:
    """One database as `provision` sees it, read in one snapshot."""

    token: _Token
    #: The catalog part of its fingerprint (from the stamp while the token holds).
    catalog: str
    tables: list[_Table]
    sequences: list[str]
    fks: list[tuple[str, str]]  # (child, parent) qualified names
    #: Whether the catalog is unchanged since the token it was checked against.
    unchanged: bool = False
    with_rows: set[str] = field(default_factory=set)
    #: md5 of the rows of each table holding rows (``rows="hash"``).
    hashes: dict[str, str] = field(default_factory=dict)
    seqvals: dict[str, tuple[str, str]] = field(default_factory=dict)
    bookkeeping: dict[str, str | None] = field(default_factory=dict)

    @property
    def schema_fp(self) -> str:
        return _warm.combine(self.catalog, self.bookkeeping)

    @property
    def fingerprint(self) -> str:
        """The full fingerprint (schema and data; the data part needs ``rows="hash"``)."""
        return _warm.combine(self.schema_fp, dict(self.hashes))

    def data_tables(self) -> list[_Table]:
        return [t for t in self.tables if t.name not in KEEP_TABLES]


def _read_state(
    conn: DbConnection,
    *,
    rows: str | None,
    seqs: bool,
    since: _Token | None = None,
    catalog: str | None = None,
) -> _State:
    """A database in the caller's transaction (the base's: REPEATABLE READ, so that all of it,
    and the rows copied from it later, come from one snapshot): its change token (checked
    against `since`), its catalog fingerprint (`catalog`, known from a stamp, is used when the
    token holds), its tables, sequences and foreign keys, then the md5 of the bookkeeping
    tables' rows, which tables hold rows — `rows` "exists": one ``EXISTS`` per table; "hash":
    the md5 of each table's rows, for the data part of the fingerprint — and, with `seqs`,
    every sequence's state."""
    token, unchanged, pages = _read_token_pages(conn, since)
    unchanged = unchanged and catalog is not None
    state = _State(token, catalog if unchanged and catalog else "", [], [], [], unchanged)
    if not unchanged:
        state.catalog = str(_fetch(conn, _CATALOG_SQL)[0][0])
    for kind, a, b, c, cols in _fetch(conn, _LISTING_SQL):
        if kind == "t":
            names = [str(x) for x in cols or [] if not str(x).startswith(":")]
            trig = "".join(str(x)[1:] for x in cols or [] if str(x).startswith(":"))
            state.tables.append(_Table(str(a), str(b), str(c), names, trig, str(a) in pages))
        elif kind == "s":
            state.sequences.append(str(a))
        elif kind == "k":
            state.fks.append((str(a), str(b)))
    _read_rows(conn, state, rows, seqs)
    return state


def _from(table: _Table) -> str:
    """``ONLY t`` for a plain table (its inheritance children are tables of their own), ``t``
    for a partitioned root (its partitions are not listed)."""
    return f"{'ONLY ' if table.kind == 'r' else ''}{table.qn}"


def _read_rows(conn: DbConnection, state: _State, rows: str | None, seqs: bool) -> None:
    """Round trip 2 of `_read_state`: one UNION ALL over the tables and sequences."""
    keep = [t for t in state.tables if t.name in KEEP_TABLES]
    data_tables = [t for t in state.data_tables() if t.has_pages] if rows else []
    sequences = state.sequences if seqs else []
    if rows == "hash":
        parts = [
            f"SELECT 'h', {i}, (SELECT md5(string_agg(md5(x::text), '' ORDER BY md5(x::text)))"
            f" FROM {_from(t)} x), NULL"
            for i, t in enumerate(data_tables)
        ]
    else:
        parts = [
            f"SELECT 'r', {i}, NULL, NULL WHERE EXISTS (SELECT 1 FROM {_from(t)})"
            for i, t in enumerate(data_tables)
        ]
    parts += [
        f"SELECT 's', {i}, last_value::text, is_called::text FROM {qn}"
        for i, qn in enumerate(sequences)
    ]
    parts += [
        f"SELECT 'b', {i}, (SELECT md5(string_agg(x::text, E'\\n' ORDER BY x::text COLLATE \"C\"))"
        f" FROM {_from(t)} x), NULL"
        for i, t in enumerate(keep)
    ]
    if not parts:
        return
    for kind, i, a, b in _fetch(conn, "\nUNION ALL ".join(parts)):
        if kind == "s":
            state.seqvals[sequences[int(i)]] = (str(a), str(b))
        elif kind == "b":
            state.bookkeeping[keep[int(i)].qn] = None if a is None else str(a)
        elif kind == "r" or a is not None:
            state.with_rows.add(data_tables[int(i)].qn)
            if kind == "h":
                state.hashes[data_tables[int(i)].qn] = str(a)


def _begin(conn: DbConnection, snapshot: bool) -> None:
    level = " ISOLATION LEVEL REPEATABLE READ" if snapshot else ""
    _execute(conn, f"BEGIN{level}; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; {_TEXT_SETTINGS}")


def _rollback(conn: DbConnection) -> None:
    with contextlib.suppress(Exception):
        _execute(conn, "ROLLBACK")


def fingerprint(db_name: str, **connect_kwargs: object) -> str:
    """The fingerprint of `db_name` (catalog, bookkeeping rows, seed rows), as `provision`
    computes it."""
    what = f"fingerprinting PostgreSQL database {db_name!r} failed"
    with _connection(db_name, what, connect_kwargs) as conn:
        try:
            return _fingerprint(conn).fingerprint
        except Exception as exc:
            raise _error(what, exc, connect_kwargs) from exc


def _fingerprint(conn: DbConnection) -> _State:
    """The full state of a database (its catalog fingerprinted), in one snapshot."""
    _begin(conn, snapshot=True)
    try:
        return _read_state(conn, rows="hash", seqs=False)
    finally:
        _rollback(conn)


def _fill_order(tables: list[_Table], fks: Sequence[tuple[str, str]]) -> list[_Table] | None:
    """`tables` with every table after the tables it references (None: a reference cycle)."""
    by_name = {t.qn: t for t in tables}
    needs = {t.qn: {p for c, p in fks if c == t.qn and p in by_name} for t in tables}
    order: list[_Table] = []
    done: set[str] = set()
    while len(order) < len(tables):
        ready = [t for t in tables if t.qn not in done and needs[t.qn] <= done]
        if not ready:
            return None
        order += ready
        done.update(t.qn for t in ready)
    return order


def _copy_sql(table: _Table) -> tuple[str, str]:
    """(COPY … TO STDOUT, COPY … FROM STDIN) of `table`: text format (exact for every type with
    text I/O), generated columns left out."""
    cols = f" ({', '.join(quote_ident(c) for c in table.cols)})" if table.cols else ""
    if table.kind == "p":  # COPY TO does not read partitioned tables: a query does
        listed = ", ".join(quote_ident(c) for c in table.cols) or "*"
        out_sql = f"COPY (SELECT {listed} FROM {table.qn}) TO STDOUT"
    else:
        out_sql = f"COPY {table.qn}{cols} TO STDOUT"
    return out_sql, f"COPY {table.qn}{cols} FROM STDIN"


def _copy_out(src: DbConnection, table: _Table, out: IO[bytes]) -> None:
    cur: Any = src.cursor()
    try:
        if hasattr(cur, "copy_expert"):  # psycopg2
            cur.copy_expert(_copy_sql(table)[0], out)
        else:
            with cur.copy(_copy_sql(table)[0]) as reader:
                for block in reader:
                    out.write(block)
    finally:
        cur.close()


def _copy_in(dst: DbConnection, table: _Table, data: IO[bytes]) -> None:
    cur: Any = dst.cursor()
    try:
        if hasattr(cur, "copy_expert"):  # psycopg2
            cur.copy_expert(_copy_sql(table)[1], data)
        else:
            with cur.copy(_copy_sql(table)[1]) as writer:
                while block := data.read(1 << 20):
                    writer.write(block)
    finally:
        cur.close()


def _copy_table(src: DbConnection, dst: DbConnection, table: _Table) -> None:
    """Streams the rows of `table` from `src` into `dst` (COPY … TO STDOUT → COPY … FROM
    STDIN)."""
    src_cur: Any = src.cursor()
    if hasattr(src_cur, "copy_expert"):  # psycopg2: through a spooled buffer
        src_cur.close()
        with tempfile.SpooledTemporaryFile(max_size=_COPY_SPOOL_BYTES) as buf:
            _copy_out(src, table, buf)
            buf.seek(0)
            _copy_in(dst, table, buf)
        return
    dst_cur: Any = dst.cursor()
    try:
        out_sql, in_sql = _copy_sql(table)
        with src_cur.copy(out_sql) as reader, dst_cur.copy(in_sql) as writer:
            for block in reader:
                writer.write(block)
    finally:
        src_cur.close()
        dst_cur.close()


#: psycopg2 copies a table through memory up to this size, then through a temporary file.
_COPY_SPOOL_BYTES = 32 << 20


@dataclass
class _Kept:
    """What `_keep` did: `reason` None when the worker database was kept."""

    reason: str | None
    detail: str = ""
    restored: tuple[str, ...] = ()
    #: Whether the worker's catalog was taken from its stamp (its token held).
    unchanged: bool = False


@dataclass
class _Worker:
    """A worker database opened for a keep: its transaction is begun and its change token read
    (before the base is read, so that the workers of a run do this while one reads the base)."""

    conn: Any
    replica: bool
    token: _Token
    unchanged: bool
    pages: set[str]


def _open_worker(conn: DbConnection, stamp: _warm.Stamp) -> _Worker:
    """BEGIN (with ``session_replication_role = replica`` when allowed), the change token."""
    _begin(conn, snapshot=False)
    replica = True
    try:
        _execute(conn, "SET LOCAL session_replication_role = replica")
    except Exception:
        _rollback(conn)
        _begin(conn, snapshot=False)
        replica = False
    # A test database: a crash may lose this transaction (the next run redoes it), so the
    # commit need not wait for the WAL flush.
    _execute(conn, "SET LOCAL synchronous_commit = off")
    token, unchanged, pages = _read_token_pages(conn, _Token.parse(stamp.extra.get("wt")))
    return _Worker(conn, replica, token, unchanged, pages)


def _keep(source: _Base, worker: _Worker, stamp: _warm.Stamp) -> _Kept:
    """Makes the kept worker database hold exactly the base's rows, in the worker's
    transaction.

    The schema part of the worker's own fingerprint must equal the base's (else "drifted"): its
    catalog is the stamp's while its change token holds (else it is fingerprinted), and its
    bookkeeping rows must be the base's. Every table that has pages in the worker is emptied
    (one DELETE statement; a table without pages holds no row), every table holding rows in the
    base is filled from it (COPY, from the base's snapshot), and every sequence is set to the
    base's state (value and is_called; one statement, cheaper than reading them first).
    Bookkeeping tables are equal by the fingerprint and left alone. With
    ``session_replication_role = replica`` (superuser) neither user triggers nor foreign key
    checks fire, as in a fresh copy; without it, tables with user triggers cannot be filled
    faithfully (rebuild: "unsupported") and tables are filled parents first.
    """
    base = source.state
    assert base is not None
    conn = worker.conn
    try:
        if worker.unchanged and stamp.extra.get("cat") == base.catalog:
            tables = [dataclasses.replace(t, has_pages=t.qn in worker.pages) for t in base.tables]
            mine = _State(worker.token, base.catalog, tables, base.sequences, base.fks)
            _read_rows(conn, mine, None, False)
        else:
            mine = _read_state(conn, rows=None, seqs=False)
        if mine.schema_fp != base.schema_fp:
            _rollback(conn)
            return _Kept(_warm.DRIFTED)
        empty = [t for t in mine.data_tables() if t.has_pages]
        fill = [t for t in base.data_tables() if t.qn in base.with_rows]
        touched = {t.qn: t for t in [*empty, *fill]}
        special = sorted(q for q, t in touched.items() if set(t.triggers) & {"A", "R"})
        if special:
            _rollback(conn)
            detail = f"ENABLE ALWAYS/REPLICA triggers on {', '.join(special)}"
            return _Kept(_warm.UNSUPPORTED, detail)
        if not worker.replica:
            triggered = sorted(q for q, t in touched.items() if t.triggers)
            order = _fill_order(fill, base.fks)
            if triggered or order is None:
                _rollback(conn)
                why = f"user triggers on {', '.join(triggered)}" if triggered else "a FK cycle"
                detail = f"restoring seed rows past {why} needs session_replication_role"
                return _Kept(_warm.UNSUPPORTED, detail + " (superuser)")
            fill = order
        if empty:
            ctes = ", ".join(f"d{i} AS (DELETE FROM {_from(t)})" for i, t in enumerate(empty))
            _execute(conn, f"WITH {ctes} SELECT 1")
        source.fill(conn, fill)
        setvals = [
            f"setval({_literal(qn)}::regclass, {int(value)}, {called})"
            for qn, (value, called) in sorted(base.seqvals.items())
        ]
        if setvals:
            _execute(conn, f"SELECT {', '.join(setvals)}")
        _execute(conn, "COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return _Kept(None, restored=tuple(t.qn for t in fill), unchanged=worker.unchanged)


def _connect_base(base: str, what: str, connect_kwargs: dict[str, object]) -> Any | None:
    """A connection to `base`, or None when it does not exist."""
    try:
        return connect(base, **connect_kwargs)
    except PgUtilError:
        raise
    except Exception as exc:
        if _sqlstate(exc) == _INVALID_CATALOG or f'database "{base}" does not exist' in str(exc):
            return None
        raise _error(f"{what}: cannot connect to {base!r}", exc, connect_kwargs) from exc


def _stamp_of(
    state: _State,
    base: str,
    base_token: _Token,
    worker_token: _Token,
    created: datetime | None = None,
) -> str:
    return _warm.stamp_text(
        base,
        state.fingerprint,
        created,
        cat=state.catalog,
        bt=base_token.text(),
        wt=worker_token.text(),
    )


#: Seed rows the first worker of a run leaves in the run directory for the others, at most;
#: with more, every worker reads the base itself.
RUN_CACHE_BYTES = 64 << 20


@dataclass
class _Base:
    """The base as one worker sees it: its state, read in one snapshot (None: it does not
    exist), and where its rows come from — its open connection (in that snapshot), or the COPY
    files that the run's first worker left in the run directory."""

    state: _State | None
    conn: Any = None
    data: Path | None = None

    def fill(self, worker_conn: DbConnection, tables: Sequence[_Table]) -> None:
        for table in tables:
            if self.data is None:
                _copy_table(self.conn, worker_conn, table)
                continue
            index = next(
                i for i, t in enumerate(self.state.tables if self.state else []) if t.qn == table.qn
            )
            with (self.data / f"{index}.copy").open("rb") as data:
                _copy_in(worker_conn, table, data)

    def close(self) -> None:
        if self.conn is not None:
            _rollback(self.conn)
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def _state_json(state: _State) -> dict[str, Any]:
    out = dataclasses.asdict(state)
    out["with_rows"] = sorted(state.with_rows)
    return out


def _state_from_json(data: dict[str, Any]) -> _State:
    state = _State(
        _Token(**data["token"]),
        data["catalog"],
        [_Table(**t) for t in data["tables"]],
        list(data["sequences"]),
        [(str(c), str(p)) for c, p in data["fks"]],
        bool(data["unchanged"]),
    )
    state.with_rows = set(data["with_rows"])
    state.hashes = dict(data["hashes"])
    state.seqvals = {k: (str(v[0]), str(v[1])) for k, v in data["seqvals"].items()}
    state.bookkeeping = dict(data["bookkeeping"])
    return state


def _read_base_direct(
    base: str, stamp: _warm.Stamp | None, what: str, connect_kwargs: dict[str, object]
) -> _Base:
    """The base read by this worker (its connection stays open, in the snapshot)."""
    conn = _connect_base(base, what, connect_kwargs)
    if conn is None:
        return _Base(None)
    try:
        _begin(conn, snapshot=True)
        state = _read_state(
            conn,
            rows="hash",
            seqs=True,
            since=_Token.parse(stamp.extra.get("bt")) if stamp else None,
            catalog=stamp.extra.get("cat") if stamp else None,
        )
    except Exception as exc:
        _rollback(conn)
        with contextlib.suppress(Exception):
            conn.close()
        raise _error(f"{what} (reading {base!r})", exc, connect_kwargs) from exc
    return _Base(state, conn=conn)


def _read_base(
    base: str, stamp: _warm.Stamp | None, what: str, connect_kwargs: dict[str, object]
) -> _Base:
    """The base, read once per run when the run has several workers (`_warm.run_cache`): the
    first worker reads it and writes its state and its seed rows (COPY files) for the others;
    every worker then restores the same snapshot. Seed rows over `RUN_CACHE_BYTES`: every
    worker reads the base itself."""
    key = f"pg {sorted((k, str(v)) for k, v in connect_kwargs.items() if k != 'password')} {base}"
    with _warm.run_cache(key) as cache:
        if cache is None:
            return _read_base_direct(base, stamp, what, connect_kwargs)
        marker = cache / "state.json"
        if marker.exists():
            saved = json.loads(marker.read_text())
            if saved.get("mode") == "cached":
                state = None if saved["state"] is None else _state_from_json(saved["state"])
                return _Base(state, data=cache)
        else:
            read = _read_base_direct(base, stamp, what, connect_kwargs)
            if read.state is None:
                marker.write_text(json.dumps({"mode": "cached", "state": None}))
                return read
            if _save_rows(read, cache):
                marker.write_text(json.dumps({"mode": "cached", "state": _state_json(read.state)}))
                read.close()
                read.data = cache
                return read
            marker.write_text(json.dumps({"mode": "direct"}))
            return read
    return _read_base_direct(base, stamp, what, connect_kwargs)


def _save_rows(read: _Base, cache: Path) -> bool:
    """The base's seed rows as COPY files in `cache` (False: more than `RUN_CACHE_BYTES`)."""
    assert read.state is not None
    total = 0
    for index, table in enumerate(read.state.tables):
        if table.name in KEEP_TABLES or table.qn not in read.state.with_rows:
            continue
        path = cache / f"{index}.copy"
        with path.open("wb") as out:
            _copy_out(read.conn, table, out)
        total += path.stat().st_size
        if total > RUN_CACHE_BYTES:
            return False
    return True


def _worker_stamp(target: str, connect_kwargs: dict[str, object]) -> tuple[Any, str | None]:
    """(a connection to `target`, its comment), or (None, None) when it cannot be connected to
    (it does not exist)."""
    try:
        conn = connect(target, **connect_kwargs)
    except Exception:
        return None, None
    try:
        found = _fetch(
            conn,
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
            " WHERE datname = current_database()",
        )
    except Exception:
        with contextlib.suppress(Exception):
            conn.close()
        return None, None
    return conn, (None if not found or found[0][0] is None else str(found[0][0]))


def provision(
    base: str, target: str, *, fresh: bool = False, **connect_kwargs: object
) -> _warm.Outcome:
    """Makes `target` a copy of `base` — keeping the one from the last run when it still is one.

    Keep when `target` exists with a final stamp whose fingerprint is the base's current one
    (schema, bookkeeping rows, seed rows), its own schema fingerprint is the base's, and `fresh`
    is false: then only its rows and sequences are reset to the base's (`_keep`). The catalog
    parts of both fingerprints come from the stamp while the change tokens it records hold (see
    `_token_sql`); else they are computed, and when the worker database is kept all the same,
    its stamp gets fresh tokens. Otherwise (or when the keep fails) drop it, clone the base
    (``CREATE DATABASE … TEMPLATE``: an atomic copy, no session can be
    connected to the template meanwhile), fingerprint the copy and stamp it with that
    fingerprint (the copy's, so it describes exactly what the worker database holds), last. The
    base's token in the stamp is taken before the clone: a base changed since then is caught. A
    missing base gives an empty `target` (stamped, fingerprint ``-``). In a run with several
    workers the base is read once (`_read_base`).
    """
    what = f"provisioning PostgreSQL database {target!r} from {base!r} failed"
    if base == target:
        raise PgUtilError(f"dagz: {what}: source and target are the same database")
    with hard_bypass():
        worker_conn, comment = _worker_stamp(target, connect_kwargs)
        worker: _Worker | None = None
        detail = ""
        try:
            stamp = _warm.parse_stamp(comment)
            if worker_conn is not None and stamp is not None and stamp.complete and not fresh:
                try:
                    worker = _open_worker(worker_conn, stamp)
                except Exception as exc:
                    detail = _one_line(exc, connect_kwargs)
            source = _read_base(
                base, stamp if stamp and stamp.base == base else None, what, connect_kwargs
            )
            try:
                state = source.state
                if state is None:
                    if worker_conn is not None:
                        _rollback(worker_conn)
                        worker_conn.close()
                        worker_conn = None
                    _make_empty(base, target, what, connect_kwargs)
                    return _warm.Outcome("empty", _warm.MISSING, _warm.NO_BASE)
                reason = _warm.decide(
                    base=base,
                    exists=worker_conn is not None,
                    comment=comment,
                    base_fp=state.fingerprint,
                    fresh=fresh,
                )
                if reason is None:
                    kept = _try_keep(source, worker, stamp, base, target, connect_kwargs)
                    if isinstance(kept, _warm.Outcome):
                        return kept
                    reason, detail = kept
            finally:
                source.close()
        finally:
            if worker_conn is not None:
                _rollback(worker_conn)
                with contextlib.suppress(Exception):
                    worker_conn.close()
        return _rebuild(base, target, reason, detail, state.token, what, connect_kwargs)


def _try_keep(
    source: _Base,
    worker: _Worker | None,
    stamp: _warm.Stamp | None,
    base: str,
    target: str,
    connect_kwargs: dict[str, object],
) -> _warm.Outcome | tuple[str, str]:
    """The kept outcome, or (reason, detail) to rebuild."""
    state = source.state
    if worker is None or stamp is None or state is None:
        return _warm.KEEP_FAILED, ""
    try:
        kept = _keep(source, worker, stamp)
        if kept.reason is not None:
            return kept.reason, kept.detail
        if not (state.unchanged and kept.unchanged):  # a token did not hold: fresh ones
            _stamp(
                worker.conn,
                target,
                _stamp_of(state, base, state.token, worker.token, stamp.created),
            )
        return _warm.Outcome("kept", None, state.fingerprint, restored=kept.restored)
    except Exception as exc:
        return _warm.KEEP_FAILED, _one_line(exc, connect_kwargs)


def _stamp(conn: DbConnection, target: str, text: str) -> None:
    _execute(conn, f"COMMENT ON DATABASE {quote_ident(target)} IS {_literal(text)}")


def _make_empty(base: str, target: str, what: str, connect_kwargs: dict[str, object]) -> None:
    with _maintenance((base, target), what, connect_kwargs) as conn:
        try:
            _drop(conn, target)
        except Exception as exc:
            raise _error(what, exc, connect_kwargs) from exc
        _create_retrying(
            conn,
            f"CREATE DATABASE {quote_ident(target)}",
            "template1",
            f"creating empty PostgreSQL database {target!r} ({base!r} does not exist) failed",
            connect_kwargs,
        )
        try:
            _stamp(conn, target, _warm.stamp_text(base, _warm.NO_BASE))
        except Exception as exc:
            raise _error(what, exc, connect_kwargs) from exc


def _rebuild(
    base: str,
    target: str,
    reason: str,
    detail: str,
    base_token: _Token,
    what: str,
    connect_kwargs: dict[str, object],
) -> _warm.Outcome:
    """Drop, clone (the building stamp right after), fingerprint the copy, stamp it."""
    with _maintenance((base, target), what, connect_kwargs) as admin:
        version = _server_version(admin)
        strategy = _clone_strategy(admin, version)
        create = f"CREATE DATABASE {quote_ident(target)} TEMPLATE {quote_ident(base)}{strategy}"
        try:
            _drop(admin, target)
        except Exception as exc:
            raise _error(what, exc, connect_kwargs) from exc
        _create_retrying(admin, create, base, what, connect_kwargs)
        try:
            _stamp(admin, target, _warm.building_text(base))
            with _connection(target, what, connect_kwargs) as conn:
                copy = _fingerprint(conn)
            _stamp(admin, target, _stamp_of(copy, base, base_token, copy.token))
        except PgUtilError:
            raise
        except Exception as exc:
            raise _error(what, exc, connect_kwargs) from exc
    return _warm.Outcome("rebuilt", reason, copy.fingerprint, detail)


@dataclass(frozen=True)
class Owned:
    """A database that carries a dagz stamp."""

    name: str
    stamp: _warm.Stamp
    size: int | None  # bytes, None when not readable


def list_owned(**connect_kwargs: object) -> list[Owned]:
    """Every database on the server whose comment is a dagz stamp, by name."""
    what = "listing dagz's PostgreSQL databases failed"
    with _maintenance((), what, connect_kwargs) as conn:
        try:
            rows = _fetch(
                conn,
                "SELECT datname, shobj_description(oid, 'pg_database'),"
                " CASE WHEN has_database_privilege(oid, 'CONNECT')"
                " THEN pg_database_size(oid) END"
                " FROM pg_database"
                " WHERE shobj_description(oid, 'pg_database') LIKE 'dagz:%' ORDER BY datname",
            )
        except Exception as exc:
            raise _error(what, exc, connect_kwargs) from exc
    owned = []
    for name, comment, size in rows:
        stamp = _warm.parse_stamp(comment)
        if stamp is not None:
            owned.append(Owned(str(name), stamp, None if size is None else int(size)))
    return owned
