"""MySQL `clone` and `drop`.

`clone` replays ``SHOW CREATE TABLE`` (``CREATE TABLE … LIKE`` silently drops foreign keys), copies
rows only for tables that hold rows, then creates stored functions and procedures, views and
triggers. ``DEFINER`` clauses are dropped (the cloning user becomes the definer: keeping another
definer would need SUPER/SET USER). Events are not copied.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dagz.engines.base import DbConnection, dependency_order
from dagz.engines.mysql import batch
from dagz.engines.mysql.batch import (
    _batch_error,
    _BatchError,
    _lock_waits,
    _rows_union,
    _with_sessions,
)
from dagz.engines.mysql.connection import (
    _connection,
    _errno,
    _literal,
    _q,
    own_session_ids,
    quote_ident,
    sessions_in,
)
from dagz.errors import EngineError

#: ER_NO_SUCH_THREAD: `KILL` of a session that ended meanwhile.
_UNKNOWN_THREAD = 1094

#: ER_NO_SUCH_TABLE / ER_VIEW_INVALID: a view created before the view it selects from.
_VIEW_ORDER_ERRORS = frozenset({1146, 1356})

_DEFINER_RE = re.compile(
    r"\s+DEFINER\s*=\s*(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[^\s@]+)"
    r"(?:\s*@\s*(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[^\s]+))?",
    re.IGNORECASE,
)


def _strip_definer(statement: str, keyword: str) -> str:
    """Removes the DEFINER clause from the header of a CREATE VIEW/TRIGGER (before `keyword`)."""
    m = re.search(rf"\b{keyword}\b", statement, re.IGNORECASE)
    if m is None:
        return statement
    head = _DEFINER_RE.sub("", statement[: m.start()], count=1)
    if not head.endswith((" ", "\n", "\t")):
        head += " "
    return head + statement[m.start() :]


def _view_order(views: dict[str, str]) -> list[str]:
    """Views ordered so that each comes after the views its definition mentions (text search for
    the quoted name; a false hit only adds an ordering constraint; cycles keep name order)."""
    deps = {v: {w for w in views if w != v and quote_ident(w) in body} for v, body in views.items()}
    return dependency_order(sorted(views), deps, break_cycles=True) or []


def end_sessions(conn: DbConnection, db_name: str) -> list[int]:
    """Ends (``KILL``) the other sessions whose current database is `db_name` — before dagz
    drops or rebuilds it: a session a killed run left (a child that outlived it) may hold
    locks the DROP would wait on. Returns their ids; one already gone is skipped.

    Only a session seen in `db_name` twice, 20 ms apart, is ended, and never one reading the
    catalog (`sessions_in`): a catalog reader passes through every database for microseconds,
    a session left in `db_name` stays there."""
    query = sessions_in(_literal(conn, db_name))
    (first,) = batch._run(conn, [query])
    if not first:
        return []
    time.sleep(0.02)
    (second,) = batch._run(conn, [query])
    own = own_session_ids()
    ended = []
    for sid in sorted({int(r[0]) for r in first} & {int(r[0]) for r in second} - own):
        try:
            batch._run(conn, [f"KILL {sid}"])
        except _BatchError as err:
            if _errno(err.exc) != _UNKNOWN_THREAD:
                raise
        ended.append(sid)
    return ended


def drop(db_name: str, **connect_kwargs: object) -> None:
    """``DROP DATABASE IF EXISTS db_name``, its other sessions ended first (`end_sessions`)."""
    what = f"dropping MySQL database {db_name!r} failed"
    with _connection(None, what, connect_kwargs) as conn:
        try:
            end_sessions(conn, db_name)
            batch._run(conn, [_lock_waits(), f"DROP DATABASE IF EXISTS {quote_ident(db_name)}"])
        except _BatchError as err:
            what = _with_sessions(conn, what, db_name, err)
            raise _batch_error(what, err, connect_kwargs) from err.exc


def clone(base: str, target: str, **connect_kwargs: object) -> str:
    """Creates `target` as a copy of `base`: tables (with foreign keys), rows, views, triggers.

    "cloned", or "empty" when `base` does not exist (then `target` is created empty). A leftover
    `target` is dropped first.
    """
    what = f"cloning MySQL database {base!r} into {target!r} failed"
    if base == target:
        raise EngineError(f"dagz: {what}: source and target are the same database")
    with _connection(None, what, connect_kwargs) as conn:
        try:
            return _clone(conn, base, target)
        except _BatchError as err:
            what = _with_sessions(conn, what, target, err)
            raise _batch_error(what, err, connect_kwargs) from err.exc


@dataclass
class _Source:
    """What `_clone` read of the base: its character set and collation, the tables (their
    copied columns, which hold rows) and every definition."""

    charset: str
    collation: str
    tables: list[str]
    table_ddl: list[str]
    copy_columns: dict[str, list[str]]
    with_rows: list[str]
    view_ddl: dict[str, str]
    trigger_defs: list[list[tuple[Any, ...]]]
    routine_statements: list[str] = field(default_factory=list)


def catalog_sql(lit: str) -> list[str]:
    """What `_clone` reads of the database named by the literal `lit`: its character set, its
    tables and views, copyable columns, triggers, routines. Each filters on the column MariaDB
    looks schemas up by, so it opens only that schema's tables (for TRIGGERS that is
    EVENT_OBJECT_SCHEMA: on TRIGGER_SCHEMA it scanned every database on the server, waiting
    on other databases' locks)."""
    return [
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
        f" FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {lit}",
        "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = {lit} ORDER BY TABLE_NAME",
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
        f" WHERE TABLE_SCHEMA = {lit} AND COALESCE(GENERATION_EXPRESSION, '') = ''"
        " ORDER BY TABLE_NAME, ORDINAL_POSITION",
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS"
        f" WHERE EVENT_OBJECT_SCHEMA = {lit}"
        " ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER",
        "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES"
        f" WHERE ROUTINE_SCHEMA = {lit} ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
    ]


def _read_source(conn: DbConnection, base: str, target: str) -> _Source | None:
    """Round trips 1 and 2 of `_clone`: drop the leftover target, read the base's catalog, then
    every definition and which tables hold rows. None: the base does not exist."""
    _, _, schema, objects, columns, triggers, routines = batch._run(
        conn,
        [
            _lock_waits(),
            f"DROP DATABASE IF EXISTS {quote_ident(target)}",
            *catalog_sql(_literal(conn, base)),
        ],
    )
    if not schema:
        return None
    tables = [str(n) for n, kind in objects if kind in ("BASE TABLE", "SYSTEM VERSIONED")]
    views = [str(n) for n, kind in objects if kind == "VIEW"]
    trigger_names = [str(row[0]) for row in triggers]
    copy_columns: dict[str, list[str]] = {}
    for table, column in columns:
        copy_columns.setdefault(str(table), []).append(str(column))
    show = [f"SHOW CREATE TABLE {_q(base, t)}" for t in tables]
    show += [f"SHOW CREATE VIEW {_q(base, v)}" for v in views]
    show += [f"SHOW CREATE TRIGGER {_q(base, t)}" for t in trigger_names]
    show += [f"SHOW CREATE {kind} {_q(base, str(name))}" for kind, name in routines]
    if tables:
        show.append(_rows_union(base, tables))
    defs = batch._run(conn, show)
    first_routine = len(tables) + len(views) + len(trigger_names)
    return _Source(
        *(str(x) for x in schema[0]),
        tables=tables,
        table_ddl=[str(r[0][1]) for r in defs[: len(tables)]],
        copy_columns=copy_columns,
        with_rows=[tables[int(row[0])] for row in defs[-1]] if tables else [],
        view_ddl={v: str(defs[len(tables) + i][0][1]) for i, v in enumerate(views)},
        trigger_defs=defs[len(tables) + len(views) : first_routine],
        routine_statements=_routine_statements(
            conn, base, routines, defs[first_routine : first_routine + len(routines)]
        ),
    )


def _clone(conn: DbConnection, base: str, target: str, comment: str | None = None) -> str:
    """`clone` on an open server connection; `comment` (MariaDB >= 10.5) is given to the new
    database in its CREATE DATABASE."""
    qb, qt = quote_ident(base), quote_ident(target)
    with_comment = "" if comment is None else f" COMMENT {_literal(conn, comment)}"
    end_sessions(conn, target)  # the leftover target is dropped next
    src = _read_source(conn, base, target)
    if src is None:
        batch._run(conn, [f"CREATE DATABASE {qt}{with_comment}"])
        return "empty"

    # Round trip 3: database, tables (any order: foreign key checks are off), rows.
    work = [
        f"CREATE DATABASE {qt} CHARACTER SET {src.charset} COLLATE {src.collation}{with_comment}",
        f"USE {qt}",
        # mysqldump's session settings: a 0 in an AUTO_INCREMENT column stays 0, no strictness
        # surprises on legacy defaults; no FK/unique checks while loading.
        "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
        "SET SESSION FOREIGN_KEY_CHECKS = 0",
        "SET SESSION UNIQUE_CHECKS = 0",
        *src.table_ddl,
    ]
    # The rows in one transaction: one redo log flush instead of one per table.
    work += ["START TRANSACTION"] if src.with_rows else []
    for t in src.with_rows:
        cols = ", ".join(quote_ident(c) for c in src.copy_columns.get(t, []))
        work.append(f"INSERT INTO {_q(target, t)} ({cols}) SELECT {cols} FROM {_q(base, t)}")
    work += ["COMMIT"] if src.with_rows else []
    # Stored functions and procedures (triggers and views may call them).
    work += src.routine_statements
    batch._run(conn, work)

    # Round trip 4: views (dependency order, qualified references rewritten to the target) and
    # triggers (after the rows, so copying fires none), each with its original sql_mode.
    rewritten = {
        v: _strip_definer(ddl.replace(f"{qb}.", f"{qt}."), "VIEW")
        for v, ddl in src.view_ddl.items()
    }
    ordered = _view_order(rewritten)
    late = [rewritten[v] for v in ordered]
    for rows in src.trigger_defs:
        _name, sql_mode, statement = rows[0][0], rows[0][1], rows[0][2]
        late.append(f"SET SESSION sql_mode = {_literal(conn, str(sql_mode))}")
        late.append(_strip_definer(str(statement), "TRIGGER"))
    late += ["SET SESSION FOREIGN_KEY_CHECKS = 1", "SET SESSION UNIQUE_CHECKS = 1"]
    try:
        batch._run(conn, late)
    except _BatchError as err:
        if err.index >= len(ordered) or _errno(err.exc) not in _VIEW_ORDER_ERRORS:
            raise
        # The text-based order missed a dependency: create the remaining views by retrying
        # until no more succeed, then the triggers.
        _create_views_retrying(conn, [rewritten[v] for v in ordered[err.index :]])
        batch._run(conn, late[len(ordered) :])
    return "cloned"


def _routine_statements(
    conn: DbConnection,
    base: str,
    routines: Sequence[tuple[Any, ...]],
    defs: Sequence[list[tuple[Any, ...]]],
) -> list[str]:
    """CREATE FUNCTION/PROCEDURE statements (definer dropped), each after its original sql_mode;
    then the loading session's mode again (for the views that follow)."""
    out: list[str] = []
    for (kind, name), rows in zip(routines, defs, strict=True):
        sql_mode, statement = rows[0][1], rows[0][2]
        if statement is None:
            raise EngineError(
                f"dagz: cannot read the definition of {kind} {base}.{name}: missing privilege"
            )
        out.append(f"SET SESSION sql_mode = {_literal(conn, str(sql_mode))}")
        out.append(_strip_definer(str(statement), str(kind)))
    if out:
        out.append("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'")
    return out


def _create_views_retrying(conn: DbConnection, statements: list[str]) -> None:
    pending = list(statements)
    while pending:
        failed: list[str] = []
        last: _BatchError | None = None
        for statement in pending:
            try:
                batch._run(conn, [statement])
            except _BatchError as err:
                if _errno(err.exc) not in _VIEW_ORDER_ERRORS:
                    raise
                failed.append(statement)
                last = err
        if len(failed) == len(pending) and last is not None:
            raise last
        pending = failed
