"""The fingerprint of a MySQL/MariaDB database (see `dagz.engines.warm`), and what dagz reads of
a database to keep or rebuild it: its listing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dagz.engines import warm
from dagz.engines.base import KEEP_TABLES, DbConnection
from dagz.engines.mysql import batch
from dagz.engines.mysql.batch import _batch_error, _BatchError, _lock_waits, _rows_union
from dagz.engines.mysql.connection import _connection, _is_mariadb, _literal, _q, quote_ident

#: The catalog part of the fingerprint: (information_schema table, schema column, fields). Every
#: field goes through QUOTE() (NULL stays NULL, text is quoted); the rows of each table are sorted
#: by their bytes and hashed by the server, one md5 per part and database (one statement per part
#: reads the base and the worker database at once). Left out on purpose: whatever differs between
#: a base and its copy — definers (a copy's objects belong to the cloning user), creation times,
#: counters and sizes, the client character set of views/triggers/routines, and the database's
#: own name inside view definitions and foreign key references (replaced by ~). TABLE_CONSTRAINTS
#: is left out too: its rows repeat STATISTICS (primary/unique keys), KEY_COLUMN_USAGE (foreign
#: keys) and CHECK_CONSTRAINTS, and it is the costliest view (it opens every table). The columns
#: are MariaDB's (CHECK_CONSTRAINTS.TABLE_NAME): warm start needs MariaDB (stamps).
_FINGERPRINT_PARTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("SCHEMATA", "SCHEMA_NAME", ("DEFAULT_CHARACTER_SET_NAME", "DEFAULT_COLLATION_NAME")),
    (
        "TABLES",
        "TABLE_SCHEMA",
        (
            "TABLE_NAME",
            "TABLE_TYPE",
            "ENGINE",
            "TABLE_COLLATION",
            "CREATE_OPTIONS",
            "TABLE_COMMENT",
        ),
    ),
    (
        "COLUMNS",
        "TABLE_SCHEMA",
        (
            "TABLE_NAME",
            "ORDINAL_POSITION",
            "COLUMN_NAME",
            "COLUMN_TYPE",
            "IS_NULLABLE",
            "COLUMN_DEFAULT",
            "CHARACTER_SET_NAME",
            "COLLATION_NAME",
            "EXTRA",
            "GENERATION_EXPRESSION",
            "COLUMN_COMMENT",
        ),
    ),
    (
        "STATISTICS",
        "TABLE_SCHEMA",
        (
            "TABLE_NAME",
            "INDEX_NAME",
            "NON_UNIQUE",
            "SEQ_IN_INDEX",
            "COLUMN_NAME",
            "SUB_PART",
            "INDEX_TYPE",
            "COLLATION",
            "INDEX_COMMENT",
        ),
    ),
    (
        "KEY_COLUMN_USAGE",
        "TABLE_SCHEMA",
        (
            "TABLE_NAME",
            "CONSTRAINT_NAME",
            "ORDINAL_POSITION",
            "COLUMN_NAME",
            "IF(REFERENCED_TABLE_SCHEMA = TABLE_SCHEMA, '~', REFERENCED_TABLE_SCHEMA)",
            "REFERENCED_TABLE_NAME",
            "REFERENCED_COLUMN_NAME",
        ),
    ),
    (
        "REFERENTIAL_CONSTRAINTS",
        "CONSTRAINT_SCHEMA",
        (
            "TABLE_NAME",
            "CONSTRAINT_NAME",
            "UPDATE_RULE",
            "DELETE_RULE",
            "MATCH_OPTION",
            "REFERENCED_TABLE_NAME",
        ),
    ),
    ("CHECK_CONSTRAINTS", "CONSTRAINT_SCHEMA", ("TABLE_NAME", "CONSTRAINT_NAME", "CHECK_CLAUSE")),
    (
        "VIEWS",
        "TABLE_SCHEMA",
        (
            "TABLE_NAME",
            "CHECK_OPTION",
            "IS_UPDATABLE",
            "SECURITY_TYPE",
            "REPLACE(VIEW_DEFINITION, CONCAT('`', REPLACE(TABLE_SCHEMA, '`', '``'), '`.'), '`~`.')",
        ),
    ),
    (
        "TRIGGERS",
        "EVENT_OBJECT_SCHEMA",  # MariaDB looks schemas up by it (TRIGGER_SCHEMA: every one)
        (
            "TRIGGER_NAME",
            "EVENT_OBJECT_TABLE",
            "EVENT_MANIPULATION",
            "ACTION_TIMING",
            "ACTION_ORDER",
            "ACTION_ORIENTATION",
            "SQL_MODE",
            "ACTION_STATEMENT",
        ),
    ),
    (
        "ROUTINES",
        "ROUTINE_SCHEMA",
        (
            "ROUTINE_TYPE",
            "ROUTINE_NAME",
            "DTD_IDENTIFIER",
            "IS_DETERMINISTIC",
            "SQL_DATA_ACCESS",
            "SECURITY_TYPE",
            "SQL_MODE",
            "ROUTINE_COMMENT",
            "ROUTINE_DEFINITION",
        ),
    ),
    (
        "PARAMETERS",
        "SPECIFIC_SCHEMA",
        (
            "SPECIFIC_NAME",
            "ROUTINE_TYPE",
            "ORDINAL_POSITION",
            "PARAMETER_MODE",
            "PARAMETER_NAME",
            "DTD_IDENTIFIER",
        ),
    ),
)

#: The parts a keep fingerprints again afterwards (MySQL DDL is not transactional): the ones the
#: copied rows depend on — which tables exist and their columns.
_RECHECK_PARTS = frozenset({"TABLES", "COLUMNS"})


def _sorted_md5(rows_sql: str) -> str:
    """md5 of the rows of `rows_sql` (a text column ``r``), sorted by their bytes."""
    return (
        "(SELECT MD5(GROUP_CONCAT(r ORDER BY CAST(r AS BINARY) SEPARATOR '\\n'))"
        f" FROM ({rows_sql}) AS x)"
    )


def _md5_of_rows(rows: Sequence[str]) -> str:
    """`_sorted_md5` computed here (for the parts whose rows dagz needs anyway)."""
    data = sorted(r.encode("utf-8", "surrogateescape") for r in rows)
    return hashlib.md5(b"\n".join(data), usedforsecurity=False).hexdigest() if data else "-"


#: Parts read row by row (their rows also give the copy's column lists and the base's
#: triggers) and hashed here; the others are hashed by the server.
_RAW_PARTS = frozenset({"COLUMNS", "TRIGGERS"})

_ALL_PARTS = tuple(table for table, _col, _fields in _FINGERPRINT_PARTS)


def _part_sql(lit: str, table: str) -> str:
    """The statement of one fingerprint part of the database named by `lit` (an equality on the
    schema: MariaDB then opens only that schema's tables; ``IN`` would open every schema's)."""
    schema_col, fields = next((c, f) for t, c, f in _FINGERPRINT_PARTS if t == table)
    row = "CONCAT_WS(' ', " + ", ".join(f"QUOTE({f})" for f in fields) + ")"
    where = f"FROM information_schema.{table} WHERE {schema_col} = {lit}"
    if table == "COLUMNS":
        return (
            f"SELECT {row}, TABLE_NAME, COLUMN_NAME, COALESCE(GENERATION_EXPRESSION, '') = ''"
            f" {where} ORDER BY TABLE_NAME, ORDINAL_POSITION"
        )
    if table == "TRIGGERS":
        return (
            f"SELECT {row}, TRIGGER_NAME, EVENT_OBJECT_TABLE, EVENT_MANIPULATION {where}"
            " ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER"
        )
    return "SELECT " + _sorted_md5(f"SELECT {row} AS r {where}")


@dataclass
class _Catalog:
    """The fingerprint parts of one database, its copyable columns and its triggers."""

    parts: dict[str, str]
    cols: dict[str, list[str]]
    triggers: list[tuple[str, str, str]]  # (name, table, event) in their order


def _catalog(results: Sequence[Sequence[tuple[Any, ...]]], parts: Sequence[str]) -> _Catalog:
    cat = _Catalog({}, {}, [])
    for part, rows in zip(parts, results, strict=True):
        if part in _RAW_PARTS:
            cat.parts[part] = _md5_of_rows([str(r[0]) for r in rows])
        else:
            cat.parts[part] = "-" if not rows or rows[0][0] is None else str(rows[0][0])
        if part == "COLUMNS":
            for _r, table, column, copied in rows:
                if copied:
                    cat.cols.setdefault(str(table), []).append(str(column))
        elif part == "TRIGGERS":
            cat.triggers = [(str(n), str(t), str(e)) for _r, n, t, e in rows]
    return cat


def _bookkeeping_sql(db: str, table: str, cols: Sequence[str]) -> str:
    quoted = ", ".join(f"QUOTE({quote_ident(c)})" for c in cols) or "''"
    return "SELECT " + _sorted_md5(f"SELECT CONCAT_WS(' ', {quoted}) AS r FROM {_q(db, table)}")


def _session_settings(conn: DbConnection) -> list[str]:
    """Lock waits; long GROUP_CONCATs; rows rendered in UTC; MySQL 8's live table statistics."""
    out = [
        _lock_waits(),
        "SET SESSION group_concat_max_len = 1073741824, time_zone = '+00:00'",
    ]
    if not _is_mariadb(conn):
        out.append("SET SESSION information_schema_stats_expiry = 0")
    return out


@dataclass
class _Listing(warm.Fingerprinted):
    """What `provision` reads of a database before deciding."""

    catalog_: _Catalog
    tables: dict[str, int | None]  # base table -> AUTO_INCREMENT
    bookkeeping: dict[str, str | None] = field(default_factory=dict)
    with_rows: list[str] = field(default_factory=list)
    #: md5 of the rows of each table holding rows (read with ``mode="hash"``).
    hashes: dict[str, str] = field(default_factory=dict)

    @property
    def parts(self) -> dict[str, str]:
        return self.catalog_.parts

    @property
    def cols(self) -> dict[str, list[str]]:
        return self.catalog_.cols

    @property
    def catalog(self) -> str:
        return warm.combine("mysql", self.parts)


def _tables_sql(lit: str) -> str:
    return (
        "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = {lit} AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')"
        " ORDER BY TABLE_NAME"
    )


def _read(
    conn: DbConnection, dbs: Sequence[str], extra: Sequence[str] = ()
) -> tuple[dict[str, _Listing], list[list[tuple[Any, ...]]]]:
    """One batch: every fingerprint part of each of the databases `dbs`, their tables and
    auto-increment counters, then `extra` (results returned)."""
    settings = _session_settings(conn)
    statements = list(settings)
    for db in dbs:
        lit = _literal(conn, db)
        statements += [_part_sql(lit, part) for part in _ALL_PARTS]
        statements.append(_tables_sql(lit))
    results = batch._run(conn, [*statements, *extra])
    listings = {}
    at = len(settings)
    for db in dbs:
        cat = _catalog(results[at : at + len(_ALL_PARTS)], _ALL_PARTS)
        at += len(_ALL_PARTS)
        tables = {str(t): None if a is None else int(a) for t, a in results[at]}
        at += 1
        listings[db] = _Listing(cat, tables)
    return listings, results[at:]


def _hash_union(db: str, tables: Sequence[str], cols: dict[str, list[str]]) -> str:
    """One SELECT: (index, md5 of the table's rows or NULL when it is empty) per table."""
    parts = []
    for i, table in enumerate(tables):
        quoted = ", ".join(f"QUOTE({quote_ident(c)})" for c in cols.get(table, [])) or "''"
        rows = f"SELECT MD5(CONCAT_WS(' ', {quoted})) AS r FROM {_q(db, table)}"
        parts.append(f"SELECT {i}, {_sorted_md5(rows)}")
    return " UNION ALL ".join(parts)


def _second_pass(
    conn: DbConnection,
    dbs: Sequence[tuple[str, _Listing, str]],
    cols: dict[str, list[str]],
    extra: Sequence[str] = (),
) -> list[list[tuple[Any, ...]]]:
    """One batch: each database's bookkeeping rows (md5) and which of its tables hold rows —
    mode "exists": one ``LIMIT 1`` per table; "hash": the md5 of each table's rows, for the data
    part of the fingerprint — then the `extra` statements (whose results are returned)."""
    statements: list[str] = []
    plan: list[tuple[_Listing, str, str | None]] = []
    for db, listing, mode in dbs:
        for table in sorted(t for t in listing.tables if t in KEEP_TABLES):
            statements.append(_bookkeeping_sql(db, table, cols.get(table, [])))
            plan.append((listing, "b", table))
        data = [t for t in listing.tables if t not in KEEP_TABLES]
        if data:
            hashed = mode == "hash"
            statements.append(_hash_union(db, data, cols) if hashed else _rows_union(db, data))
            plan.append((listing, "h" if hashed else "r", None))
    results = batch._run(conn, [*statements, *extra])
    for (listing, kind, table), rows in zip(plan, results, strict=False):
        if kind == "b" and table is not None:
            listing.bookkeeping[table] = None if rows[0][0] is None else str(rows[0][0])
            continue
        data = [t for t in listing.tables if t not in KEEP_TABLES]
        if kind == "h":
            listing.hashes = {data[int(i)]: str(h) for i, h in rows if h is not None}
            listing.with_rows = sorted(listing.hashes)
        else:
            listing.with_rows = sorted(data[int(r[0])] for r in rows)
    return results[len(statements) :]


def fingerprint(db_name: str, **connect_kwargs: object) -> str:
    """The fingerprint of `db_name` (catalog, bookkeeping rows, seed rows), as `provision`
    computes it (MariaDB)."""
    what = f"fingerprinting MySQL database {db_name!r} failed"
    with _connection(None, what, connect_kwargs) as conn:
        try:
            return _fingerprint(conn, db_name)
        except _BatchError as err:
            raise _batch_error(what, err, connect_kwargs) from err.exc


def _fingerprint(conn: DbConnection, db: str) -> str:
    listings, _ = _read(conn, [db])
    listing = listings[db]
    _second_pass(conn, [(db, listing, "hash")], listing.cols)
    return listing.fingerprint
