"""PostgreSQL `truncate`: empties the tables that hold rows and restarts used sequences.

Rows are found with the tables themselves (one ``SELECT`` over ``EXISTS (SELECT 1 FROM t)`` for
all tables), never with the statistics views, which lag behind other sessions' writes. Only the
tables that hold rows are emptied, by one ``DELETE`` statement: ``TRUNCATE … CASCADE`` must also
empty every table referencing them and cost 6 to 66 ms against ~1.5 ms for the DELETE here; it is
kept for tables where DELETE would differ (user ON DELETE triggers, row-level security,
partitions).
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Sequence
from typing import Any

from dagz.engines.base import KEEP_TABLES, LOCK_HINT, DbConnection, close_quietly
from dagz.engines.postgres.connection import (
    LOCK_TIMEOUT,
    _connection,
    _error,
    _execute,
    _fetch,
    _qualified,
    _rollback,
    _sessions,
    _sqlstate,
)
from dagz.errors import EngineError

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
            close_quietly(conn)
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
        close_quietly(conn)


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
            _rollback(conn)
            if _sqlstate(exc) == "55P03":
                holders = _sessions(conn, db_name)
                raise EngineError(
                    f"dagz: {what}: it waited more than {LOCK_TIMEOUT} for a lock: {LOCK_HINT}"
                    f" (other sessions in {db_name!r}: {holders})"
                ) from exc
            raise _error(what, exc, connect_kwargs) from exc
    return [n if s == "public" else f"{s}.{n}" for s, n in with_rows]
