"""MySQL/MariaDB utilities behind `truncate` and `create_worker_init` (SPEC §3).

Every connection opened here is made inside `dagz._bypass.hard_bypass()`, so the shim (and the
PyMySQL hook) never reroute dagz's own admin/clone connections. Driver: MySQLdb (mysqlclient) if
importable, else PyMySQL (with ``ssl_disabled=True`` unless the caller passed SSL settings: PyMySQL
builds an SSL context on every connect otherwise, ~50 ms).

Work is sent as multi-statement batches (one round trip for many statements); each statement of
a batch yields exactly one result, so a failure names the statement that failed.

Choices (measured, see db-cost-facts.md and the module's tests):

* `truncate` finds the tables holding rows with one ``UNION ALL`` of ``(SELECT i FROM t LIMIT 1)``
  (never statistics), then, with ``FOREIGN_KEY_CHECKS=0``, empties only those in one round trip.
  Auto-increment: every table whose ``information_schema.TABLES.AUTO_INCREMENT`` is above 1 is
  reset too — that also catches tables that are empty now but whose counter advanced (rows
  inserted, then deleted). MariaDB computes that column live; MySQL 8 caches it, so there the
  session sets ``information_schema_stats_expiry = 0`` first. A table created with
  ``AUTO_INCREMENT=N`` restarts at 1 as well (the declared start is not kept anywhere readable).
  Statement per table (`EMPTY_METHOD`, measured on MariaDB 10.11, 50 tables/59 FKs): ``DELETE``
  costs ~0.15 ms a table but resetting a counter with ``ALTER TABLE … AUTO_INCREMENT = 1`` ~1.7 ms,
  while ``TRUNCATE`` costs ~1.1 ms and resets the counter itself. So a table whose counter must be
  reset is ``TRUNCATE``d, any other table holding rows is ``DELETE``d — except tables with an
  ON DELETE trigger, always ``TRUNCATE``d (it fires no trigger, so an audit trigger cannot refill
  a table).
* `clone` replays ``SHOW CREATE TABLE`` (``CREATE TABLE … LIKE`` silently drops foreign keys),
  copies rows only for tables that hold rows, then creates stored functions and procedures,
  views and triggers. ``DEFINER`` clauses are dropped (the cloning user becomes the definer:
  keeping another definer would need SUPER/SET USER). Events are not copied.
* `provision` (warm start, see `dagz._warm`) keeps the worker database of the last run when its
  stamp (the database comment, MariaDB >= 10.5) and its live fingerprint match the base's
  fingerprint, and then only restores the base's rows (see `_keep`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dagz import _warm
from dagz._bypass import hard_bypass
from dagz._dbapi import first_importable

#: Migration bookkeeping tables: never emptied, their auto-increment never reset.
KEEP_TABLES = frozenset({"alembic_version", "django_migrations", "schema_migrations"})

#: Multi-statement batches are split so one never nears max_allowed_packet (16 MB by default).
_BATCH_BYTES = 1 << 20

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

#: How long `truncate` and `clone` wait for a metadata or row lock (a leaked transaction of a test
#: would otherwise block them: MySQL's own default for metadata locks is a year).
LOCK_WAIT_SECONDS = 10

#: ER_LOCK_WAIT_TIMEOUT.
_LOCK_WAIT_TIMEOUT = 1205

#: ER_NO_SUCH_TABLE / ER_VIEW_INVALID: a view created before the view it selects from.
_VIEW_ORDER_ERRORS = frozenset({1146, 1356})


class DbCursor(Protocol):
    """The part of a DB-API cursor used here (MySQLdb, PyMySQL)."""

    @property
    def description(self) -> object: ...

    def execute(self, query: str, params: Sequence[object] | None = None, /) -> object: ...

    def fetchall(self) -> Sequence[tuple[Any, ...]]: ...

    def nextset(self) -> object: ...

    def close(self) -> None: ...


class DbConnection(Protocol):
    """The part of a DB-API connection used here."""

    def cursor(self) -> DbCursor: ...

    def close(self) -> None: ...


class MySQLUtilError(RuntimeError):
    """A `dagz: …` failure of a MySQL utility (one line, names the database, no password)."""


# --------------------------------------------------------------------------------------------
# connections


def _driver() -> tuple[str, Any]:
    """(name, module) of the driver to use."""
    found = first_importable("MySQLdb", "pymysql")
    if found is None:
        raise MySQLUtilError(
            "dagz: MySQL utilities need mysqlclient (MySQLdb) or PyMySQL; neither is importable"
        )
    return found


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
        return mod.connect(autocommit=True, **kwargs)


def connect(db: str | None, /, **connect_kwargs: object) -> Any:
    """An autocommit connection (to `db`, or to no database when None), rerouting bypassed.

    `connect_kwargs` are the user's; both ``db``/``database`` and ``passwd``/``password``
    spellings are accepted, `db` wins over any database among them.
    """
    return _open(db, False, connect_kwargs)


@contextlib.contextmanager
def _connection(
    db: str | None, what: str, connect_kwargs: dict[str, object]
) -> Iterator[DbConnection]:
    with hard_bypass():
        try:
            conn = _open(db, True, connect_kwargs)
        except MySQLUtilError:
            raise
        except Exception as exc:
            where = f"to {db!r}" if db else "to the server"
            raise _error(f"{what}: cannot connect {where}", exc, connect_kwargs) from exc
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.close()


def _one_line(exc: BaseException, connect_kwargs: dict[str, object]) -> str:
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        msg = f"({args[0]}) {args[1]}"
    else:
        msg = str(exc) or type(exc).__name__
    msg = " ".join(msg.split())
    for key in ("password", "passwd"):
        secret = connect_kwargs.get(key)
        if secret:
            msg = msg.replace(str(secret), "***")
    return msg


def _error(what: str, exc: BaseException, connect_kwargs: dict[str, object]) -> MySQLUtilError:
    return MySQLUtilError(f"dagz: {what}: {_one_line(exc, connect_kwargs)}")


def _errno(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def quote_ident(name: str) -> str:
    """A MySQL identifier in backticks (`` ` `` doubled)."""
    if "\x00" in name:
        raise MySQLUtilError(f"dagz: identifier {name!r} contains a NUL byte")
    return "`" + name.replace("`", "``") + "`"


def _literal(conn: DbConnection, value: str) -> str:
    """A string literal escaped by the driver (which honours NO_BACKSLASH_ESCAPES)."""
    # PyMySQL: `escape` (its `literal` alias is deprecated); MySQLdb: `literal`.
    method = "escape" if type(conn).__module__.startswith("pymysql") else "literal"
    text = getattr(conn, method)(value)
    return text.decode("utf-8", "surrogateescape") if isinstance(text, bytes) else str(text)


def _q(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


class _BatchError(Exception):
    def __init__(self, index: int, statement: str, exc: BaseException) -> None:
        super().__init__(index, statement)
        self.index = index
        self.statement = statement
        self.exc = exc


def _run(conn: DbConnection, statements: Sequence[str]) -> list[list[tuple[Any, ...]]]:
    """Runs statements as multi-statement batches; one list of rows per statement (empty for
    statements without a result set). A failure raises `_BatchError` naming the statement."""
    results: list[list[tuple[Any, ...]]] = []
    start = 0
    while start < len(statements):
        end, size = start, 0
        while end < len(statements) and (
            end == start or size + len(statements[end]) < _BATCH_BYTES
        ):
            size += len(statements[end]) + 2
            end += 1
        chunk = statements[start:end]
        cur = conn.cursor()
        try:
            try:
                cur.execute(";\n".join(chunk))
                while True:
                    rows = cur.fetchall() if cur.description else ()
                    results.append([tuple(r) for r in rows])
                    if not cur.nextset():
                        break
            except Exception as exc:
                index = len(results)
                raise _BatchError(index, statements[min(index, len(statements) - 1)], exc) from exc
        finally:
            with contextlib.suppress(Exception):
                cur.close()
        start = end
    return results


def _short(statement: str) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _batch_error(what: str, err: _BatchError, connect_kwargs: dict[str, object]) -> MySQLUtilError:
    return _error(f"{what} (at `{_short(err.statement)}`)", err.exc, connect_kwargs)


def _is_mariadb(conn: DbConnection) -> bool:
    method = "get_server_info"  # both drivers; not part of DB-API
    info = getattr(conn, method)()
    if isinstance(info, bytes):
        info = info.decode("utf-8", "replace")
    return "mariadb" in str(info).lower()


def _rows_union(schema: str, tables: Sequence[str]) -> str:
    """One SELECT returning the index of every table that holds a row."""
    return " UNION ALL ".join(
        f"(SELECT {i} FROM {_q(schema, t)} LIMIT 1)" for i, t in enumerate(tables)
    )


# --------------------------------------------------------------------------------------------
# truncate


#: How tables are emptied. "auto" (default): ``TRUNCATE`` for a table whose auto-increment
#: counter must be reset (it resets it, and costs less than ``DELETE`` + ``ALTER TABLE …
#: AUTO_INCREMENT = 1``) or that has an ON DELETE trigger (``TRUNCATE`` fires none); ``DELETE``
#: for the other tables holding rows (an order of magnitude cheaper than ``TRUNCATE``).
#: "delete"/"truncate" force one statement (the ON DELETE trigger rule still applies); they exist
#: for measurements.
EMPTY_METHOD = "auto"


def _empty_statements(
    db_name: str, with_rows: Sequence[str], triggered: set[str], advanced: Sequence[str]
) -> list[str]:
    """The statements emptying `with_rows` and resetting `advanced` counters (FK checks off)."""
    method = EMPTY_METHOD
    reset = set(advanced)
    truncate_ = {
        t
        for t in with_rows
        if method == "truncate" or t in triggered or (method == "auto" and t in reset)
    }
    if method == "auto":
        truncate_ |= reset
    statements = [f"TRUNCATE TABLE {_q(db_name, t)}" for t in sorted(truncate_)]
    statements += [f"DELETE FROM {_q(db_name, t)}" for t in with_rows if t not in truncate_]
    statements += [
        f"ALTER TABLE {_q(db_name, t)} AUTO_INCREMENT = 1" for t in sorted(reset - truncate_)
    ]
    return statements


def truncate(db_name: str, **connect_kwargs: object) -> list[str]:
    """Empties every base table of `db_name` that holds rows and resets advanced auto-increment
    counters. Returns the tables emptied (sorted). `KEEP_TABLES` and views are never touched."""
    what = f"truncate of MySQL database {db_name!r} failed"
    with _connection(db_name, what, connect_kwargs) as conn:
        lit = _literal(conn, db_name)
        discover = [
            "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES"
            f" WHERE TABLE_SCHEMA = {lit} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            "SELECT DISTINCT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS"
            f" WHERE EVENT_OBJECT_SCHEMA = {lit} AND EVENT_MANIPULATION = 'DELETE'",
        ]
        if not _is_mariadb(conn):
            discover.insert(0, "SET SESSION information_schema_stats_expiry = 0")
        try:
            listing, delete_triggers = _run(conn, discover)[-2:]
        except _BatchError as err:
            raise _batch_error(f"{what} (listing tables)", err, connect_kwargs) from err.exc
        tables = [str(name) for name, _ in listing if str(name) not in KEEP_TABLES]
        advanced = [
            str(name)
            for name, auto in listing
            if str(name) not in KEEP_TABLES and auto is not None and int(auto) > 1
        ]
        triggered = {str(row[0]) for row in delete_triggers}
        with_rows: list[str] = []
        if tables:
            try:
                (hits,) = _run(conn, [_rows_union(db_name, tables)])
            except _BatchError as err:
                raise _batch_error(
                    f"{what} (finding tables with rows)", err, connect_kwargs
                ) from err.exc
            with_rows = sorted(tables[int(row[0])] for row in hits)
        statements = _empty_statements(db_name, with_rows, triggered, advanced)
        if statements:
            try:
                batch = [_lock_waits(), "SET FOREIGN_KEY_CHECKS = 0", *statements]
                _run(conn, [*batch, "SET FOREIGN_KEY_CHECKS = 1"])
            except _BatchError as err:
                raise _batch_error(
                    _with_sessions(conn, what, db_name, err), err, connect_kwargs
                ) from err.exc
    return with_rows


def _lock_waits() -> str:
    wait = int(LOCK_WAIT_SECONDS)
    return f"SET SESSION lock_wait_timeout = {wait}, innodb_lock_wait_timeout = {wait}"


def _with_sessions(conn: DbConnection, what: str, db_name: str, err: _BatchError) -> str:
    """`what`, plus who else is in `db_name` when the failure was a lock wait timeout (id, user,
    host, command, state, time; never the statement text, which may hold a password)."""
    if _errno(err.exc) != _LOCK_WAIT_TIMEOUT:
        return what
    try:
        (rows,) = _run(
            conn,
            [
                "SELECT ID, USER, HOST, COMMAND, STATE, TIME FROM information_schema.PROCESSLIST"
                f" WHERE DB = {_literal(conn, db_name)} AND ID <> CONNECTION_ID() ORDER BY ID"
            ],
        )
    except _BatchError:
        return what
    sessions = "; ".join(
        f"id {sid} user {user} host {host} command {command} state {state or '-'} time {secs}s"
        for sid, user, host, command, state, secs in rows
    )
    return f"{what} (other sessions in {db_name!r}: {sessions or 'none now'})"


# --------------------------------------------------------------------------------------------
# clone / drop

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
    order: list[str] = []
    done: set[str] = set()
    pending = sorted(views)
    while pending:
        ready = [v for v in pending if deps[v] <= done] or pending[:1]
        for v in ready:
            order.append(v)
            done.add(v)
        pending = [v for v in pending if v not in done]
    return order


def drop(db_name: str, **connect_kwargs: object) -> None:
    """``DROP DATABASE IF EXISTS db_name``."""
    what = f"dropping MySQL database {db_name!r} failed"
    with _connection(None, what, connect_kwargs) as conn:
        try:
            _run(conn, [f"DROP DATABASE IF EXISTS {quote_ident(db_name)}"])
        except _BatchError as err:
            raise _batch_error(what, err, connect_kwargs) from err.exc


def clone(base: str, target: str, **connect_kwargs: object) -> str:
    """Creates `target` as a copy of `base`: tables (with foreign keys), rows, views, triggers.

    "cloned", or "empty" when `base` does not exist (then `target` is created empty). A leftover
    `target` is dropped first.
    """
    what = f"cloning MySQL database {base!r} into {target!r} failed"
    if base == target:
        raise MySQLUtilError(f"dagz: {what}: source and target are the same database")
    with _connection(None, what, connect_kwargs) as conn:
        try:
            return _clone(conn, base, target)
        except _BatchError as err:
            raise _batch_error(what, err, connect_kwargs) from err.exc


def _clone(conn: DbConnection, base: str, target: str, comment: str | None = None) -> str:
    """`clone` on an open server connection; `comment` (MariaDB >= 10.5) is given to the new
    database in its CREATE DATABASE."""
    lit = _literal(conn, base)
    qb, qt = quote_ident(base), quote_ident(target)
    with_comment = "" if comment is None else f" COMMENT {_literal(conn, comment)}"
    # Round trip 1: drop the leftover target, read the base's catalog.
    _, _, schema, objects, columns, triggers, routines = _run(
        conn,
        [
            _lock_waits(),
            f"DROP DATABASE IF EXISTS {qt}",
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME"
            f" FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {lit}",
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"
            f" WHERE TABLE_SCHEMA = {lit} ORDER BY TABLE_NAME",
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
            f" WHERE TABLE_SCHEMA = {lit} AND COALESCE(GENERATION_EXPRESSION, '') = ''"
            " ORDER BY TABLE_NAME, ORDINAL_POSITION",
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS"
            f" WHERE TRIGGER_SCHEMA = {lit}"
            " ORDER BY EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER",
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES"
            f" WHERE ROUTINE_SCHEMA = {lit} ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
        ],
    )
    if not schema:
        _run(conn, [f"CREATE DATABASE {qt}{with_comment}"])
        return "empty"
    charset, collation = (str(x) for x in schema[0])
    tables = [str(n) for n, kind in objects if kind in ("BASE TABLE", "SYSTEM VERSIONED")]
    views = [str(n) for n, kind in objects if kind == "VIEW"]
    trigger_names = [str(row[0]) for row in triggers]
    copy_columns: dict[str, list[str]] = {}
    for table, column in columns:
        copy_columns.setdefault(str(table), []).append(str(column))

    # Round trip 2: every definition, and which tables hold rows.
    show = [f"SHOW CREATE TABLE {_q(base, t)}" for t in tables]
    show += [f"SHOW CREATE VIEW {_q(base, v)}" for v in views]
    show += [f"SHOW CREATE TRIGGER {_q(base, t)}" for t in trigger_names]
    show += [f"SHOW CREATE {kind} {_q(base, str(name))}" for kind, name in routines]
    if tables:
        show.append(_rows_union(base, tables))
    defs = _run(conn, show)
    table_ddl = [str(r[0][1]) for r in defs[: len(tables)]]
    view_ddl = {v: str(defs[len(tables) + i][0][1]) for i, v in enumerate(views)}
    trigger_defs = defs[len(tables) + len(views) : len(tables) + len(views) + len(trigger_names)]
    first_routine = len(tables) + len(views) + len(trigger_names)
    routine_defs = defs[first_routine : first_routine + len(routines)]
    with_rows = [tables[int(row[0])] for row in defs[-1]] if tables else []

    # Round trip 3: database, tables (any order: foreign key checks are off), rows.
    work = [
        f"CREATE DATABASE {qt} CHARACTER SET {charset} COLLATE {collation}{with_comment}",
        f"USE {qt}",
        # mysqldump's session settings: a 0 in an AUTO_INCREMENT column stays 0, no strictness
        # surprises on legacy defaults; no FK/unique checks while loading.
        "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
        "SET SESSION FOREIGN_KEY_CHECKS = 0",
        "SET SESSION UNIQUE_CHECKS = 0",
        *table_ddl,
    ]
    for t in with_rows:
        cols = ", ".join(quote_ident(c) for c in copy_columns.get(t, []))
        work.append(f"INSERT INTO {_q(target, t)} ({cols}) SELECT {cols} FROM {_q(base, t)}")
    # Stored functions and procedures (triggers and views may call them).
    work += _routine_statements(conn, base, routines, routine_defs)
    _run(conn, work)

    # Round trip 4: views (dependency order, qualified references rewritten to the target) and
    # triggers (after the rows, so copying fires none), each with its original sql_mode.
    rewritten = {
        v: _strip_definer(ddl.replace(f"{qb}.", f"{qt}."), "VIEW") for v, ddl in view_ddl.items()
    }
    ordered = _view_order(rewritten)
    late = [rewritten[v] for v in ordered]
    for rows in trigger_defs:
        _name, sql_mode, statement = rows[0][0], rows[0][1], rows[0][2]
        late.append(f"SET SESSION sql_mode = {_literal(conn, str(sql_mode))}")
        late.append(_strip_definer(str(statement), "TRIGGER"))
    late += ["SET SESSION FOREIGN_KEY_CHECKS = 1", "SET SESSION UNIQUE_CHECKS = 1"]
    try:
        _run(conn, late)
    except _BatchError as err:
        if err.index >= len(ordered) or _errno(err.exc) not in _VIEW_ORDER_ERRORS:
            raise
        # The text-based order missed a dependency: create the remaining views by retrying
        # until no more succeed, then the triggers.
        _create_views_retrying(conn, [rewritten[v] for v in ordered[err.index :]])
        _run(conn, late[len(ordered) :])
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
            raise MySQLUtilError(
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
                _run(conn, [statement])
            except _BatchError as err:
                if _errno(err.exc) not in _VIEW_ORDER_ERRORS:
                    raise
                failed.append(statement)
                last = err
        if len(failed) == len(pending) and last is not None:
            raise last
        pending = failed


# --------------------------------------------------------------------------------------------
# warm start (issue 7): fingerprint, keep, rebuild, stamps — see dagz._warm for the design.

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
        "TRIGGER_SCHEMA",
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


def _supports_stamps(conn: DbConnection) -> bool:
    """Database comments (the stamp) exist from MariaDB 10.5 on; MySQL has none."""
    info = conn.get_server_info()  # type: ignore[attr-defined]
    if isinstance(info, bytes):
        info = info.decode("utf-8", "replace")
    # PyMySQL shows MariaDB's "5.5.5-" compatibility prefix, Connector/C strips it.
    m = re.search(r"(\d+)\.(\d+)\.\d+-MariaDB", str(info), re.IGNORECASE)
    return m is not None and (int(m[1]), int(m[2])) >= (10, 5)


@dataclass
class _Listing:
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
        return _warm.combine("mysql", self.parts)

    @property
    def schema_fp(self) -> str:
        return _warm.combine(self.catalog, self.bookkeeping)

    @property
    def fingerprint(self) -> str:
        """The full fingerprint (schema and data; the data part needs ``mode="hash"``)."""
        return _warm.combine(self.schema_fp, dict(self.hashes))


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
    results = _run(conn, [*statements, *extra])
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
    results = _run(conn, [*statements, *extra])
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


def provision(
    base: str, target: str, *, fresh: bool = False, **connect_kwargs: object
) -> _warm.Outcome:
    """Makes `target` a copy of `base` — keeping the one from the last run when it still is one.

    Keep when `target` exists with a final stamp whose fingerprint is the base's current one
    (schema, bookkeeping rows, seed rows), its own live schema fingerprint is the base's, and
    `fresh` is false: then only its rows and auto-increment counters are reset to the base's
    (`_keep`). Otherwise (or when the keep fails) clone it again (`_clone`, created with the
    building stamp), fingerprint the copy and stamp it with that fingerprint, last. A missing
    base gives an empty `target`. Servers without database comments (MySQL, MariaDB < 10.5)
    always clone.
    """
    what = f"provisioning MySQL database {target!r} from {base!r} failed"
    if base == target:
        raise MySQLUtilError(f"dagz: {what}: source and target are the same database")
    with _connection(None, what, connect_kwargs) as conn:
        try:
            return _provision(conn, base, target, fresh, what, connect_kwargs)
        except _BatchError as err:
            raise _batch_error(what, err, connect_kwargs) from err.exc


@dataclass
class _BaseRead:
    """The base as `provision` needs it (None listing: it does not exist): its listing, the
    definitions of its INSERT triggers (``SHOW CREATE TRIGGER`` rows)."""

    listing: _Listing | None
    trigger_defs: list[list[tuple[Any, ...]]]


def _read_base(conn: DbConnection, base: str) -> _BaseRead:
    lb = _literal(conn, base)
    listings, (schemata,) = _read(
        conn,
        [base],
        [f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {lb}"],
    )
    if not schemata:
        return _BaseRead(None, [])
    b = listings[base]
    shows = [
        f"SHOW CREATE TRIGGER {_q(base, name)}"
        for name, _table, event in b.catalog_.triggers
        if event == "INSERT"
    ]
    defs = _second_pass(conn, [(base, b, "hash")], b.cols, shows)
    return _BaseRead(b, [[tuple(str(v) for v in row) for row in rows] for rows in defs])


def _base_json(read: _BaseRead) -> dict[str, Any]:
    b = read.listing
    if b is None:
        return {"listing": None}
    return {
        "listing": {
            "parts": b.catalog_.parts,
            "cols": b.catalog_.cols,
            "triggers": b.catalog_.triggers,
            "tables": b.tables,
            "bookkeeping": b.bookkeeping,
            "with_rows": b.with_rows,
            "hashes": b.hashes,
        },
        "trigger_defs": read.trigger_defs,
    }


def _base_from_json(data: dict[str, Any]) -> _BaseRead:
    raw = data["listing"]
    if raw is None:
        return _BaseRead(None, [])
    cat = _Catalog(dict(raw["parts"]), dict(raw["cols"]), [tuple(t) for t in raw["triggers"]])
    listing = _Listing(
        cat,
        dict(raw["tables"]),
        dict(raw["bookkeeping"]),
        list(raw["with_rows"]),
        dict(raw["hashes"]),
    )
    defs = [[tuple(row) for row in rows] for rows in data["trigger_defs"]]
    return _BaseRead(listing, defs)


def _read_base_once(conn: DbConnection, base: str, connect_kwargs: dict[str, object]) -> _BaseRead:
    """The base, read once per run when the run has several workers (`_warm.run_cache`): the
    first worker leaves what it read for the others (the rows themselves are copied server
    side, from the base as it is then)."""
    key = (
        f"mysql {sorted((k, str(v)) for k, v in connect_kwargs.items() if k != 'password')} {base}"
    )
    with _warm.run_cache(key) as cache:
        if cache is None:
            return _read_base(conn, base)
        saved = cache / "base.json"
        if saved.exists():
            return _base_from_json(json.loads(saved.read_text()))
        read = _read_base(conn, base)
        saved.write_text(json.dumps(_base_json(read)))
        return read


def _provision(
    conn: DbConnection,
    base: str,
    target: str,
    fresh: bool,
    what: str,
    connect_kwargs: dict[str, object],
) -> _warm.Outcome:
    if not _supports_stamps(conn):
        _clone(conn, base, target)
        detail = "warm start needs database comments (MariaDB >= 10.5)"
        return _warm.Outcome("rebuilt", _warm.UNSUPPORTED, "", detail)
    lt = _literal(conn, target)
    listings, (schemata,) = _read(
        conn,
        [target],
        [
            "SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA"
            f" WHERE SCHEMA_NAME = {lt}"
        ],
    )
    read = _read_base_once(conn, base, connect_kwargs)
    b = read.listing
    if b is None:
        _clone(conn, base, target, _warm.stamp_text(base, _warm.NO_BASE))
        return _warm.Outcome("empty", _warm.MISSING, _warm.NO_BASE)
    t = listings[target]
    cols = b.cols
    triggers = b.catalog_.triggers
    insert_triggers = [(name, table) for name, table, event in triggers if event == "INSERT"]
    exists = bool(schemata)
    if exists:
        _second_pass(conn, [(target, t, "exists")], cols)
    reason = _warm.decide(
        base=base,
        exists=exists,
        comment=None if not schemata or schemata[0][1] is None else str(schemata[0][1]),
        base_fp=b.fingerprint,
        fresh=fresh,
        base_schema_fp=b.schema_fp,
        live_schema_fp=t.schema_fp,
    )
    detail = ""
    if reason is None:
        delete_triggered = {table for _n, table, event in triggers if event == "DELETE"}
        try:
            reason, detail = _keep(
                conn, base, target, b, t, cols, delete_triggered, insert_triggers, read.trigger_defs
            )
        except _BatchError as err:
            reason, detail = _warm.KEEP_FAILED, _batch_error(what, err, connect_kwargs).args[0]
        if reason is None:
            return _warm.Outcome("kept", None, b.fingerprint, restored=tuple(b.with_rows))
    return _rebuild(conn, base, target, b.fingerprint, reason, detail)


def _keep(
    conn: DbConnection,
    base: str,
    target: str,
    b: _Listing,
    t: _Listing,
    cols: dict[str, list[str]],
    delete_triggered: set[str],
    insert_triggers: Sequence[tuple[str, str]],
    trigger_defs: Sequence[list[tuple[Any, ...]]],
) -> tuple[str | None, str]:
    """Makes the kept `target` hold exactly the base's rows: (None, "") when done, else (reason,
    detail) to rebuild instead.

    One batch, foreign key checks off: every table holding rows in the target is emptied (as
    `truncate` does: ``DELETE``, or ``TRUNCATE`` for tables with an ON DELETE trigger), every
    table holding rows in the base is refilled with ``INSERT INTO target.t SELECT … FROM
    base.t`` (``NO_AUTO_VALUE_ON_ZERO`` keeps explicit zeros), the rows in one transaction.
    MySQL cannot switch triggers off, so the INSERT triggers of the refilled tables are dropped
    first and created again after the rows (from the base's definitions, in their order), as a
    fresh copy does — with the building stamp in place meanwhile. Then the parts of the base's
    fingerprint that the copied rows depend on (tables, columns) are taken again (MySQL DDL is
    not transactional: a base changed meanwhile → "changed"), and every auto-increment counter
    that differs from the base's is set to it. Bookkeeping tables are equal by the fingerprint
    and left alone.
    """
    fill = list(b.with_rows)
    empty = list(t.with_rows)
    qt = quote_ident(target)
    refilled = set(fill)
    redo = [
        (name, rows[0][1], rows[0][2])
        for (name, table), rows in zip(insert_triggers, trigger_defs, strict=True)
        if table in refilled
    ]
    lb = _literal(conn, base)
    batch = [f"USE {qt}"]
    if redo:
        batch.append(f"ALTER DATABASE {qt} COMMENT = {_literal(conn, _warm.building_text(base))}")
    batch += [
        "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
        "SET SESSION FOREIGN_KEY_CHECKS = 0",
        "SET SESSION UNIQUE_CHECKS = 0",
    ]
    emptying = _empty_statements(target, empty, delete_triggered, [])
    # TRUNCATE and DROP TRIGGER commit implicitly: first; the rows in one transaction (one
    # redo log flush instead of one per statement).
    batch += [x for x in emptying if x.startswith("TRUNCATE")]
    batch += [f"DROP TRIGGER {_q(target, name)}" for name, _mode, _sql in redo]
    batch.append("START TRANSACTION")
    batch += [x for x in emptying if not x.startswith("TRUNCATE")]
    for table in fill:
        listed = ", ".join(quote_ident(c) for c in cols.get(table, []))
        batch.append(
            f"INSERT INTO {_q(target, table)} ({listed}) SELECT {listed} FROM {_q(base, table)}"
        )
    batch.append("COMMIT")
    for _name, sql_mode, statement in redo:
        batch.append(f"SET SESSION sql_mode = {_literal(conn, str(sql_mode))}")
        batch.append(_strip_definer(str(statement), "TRIGGER"))
    batch += ["SET SESSION FOREIGN_KEY_CHECKS = 1", "SET SESSION UNIQUE_CHECKS = 1"]
    # The counters of the tables just emptied or filled (one table each: MariaDB then opens
    # only that table), the others were read before.
    touched = sorted(set(fill) | set(empty))
    lt = _literal(conn, target)
    batch += [
        "SELECT AUTO_INCREMENT FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = {lt} AND TABLE_NAME = {_literal(conn, table)}"
        for table in touched
    ]
    recheck = [p for p in _ALL_PARTS if p in _RECHECK_PARTS]
    batch += [_part_sql(lb, part) for part in recheck]
    results = _run(conn, batch)
    after = _catalog(results[-len(recheck) :], recheck).parts
    if any(after[p] != b.parts[p] for p in recheck):
        return _warm.CHANGED, "the base changed while its copy was being kept"
    counters = dict(t.tables)
    for table, rows in zip(
        touched, results[-len(recheck) - len(touched) : -len(recheck)], strict=True
    ):
        counters[table] = None if not rows or rows[0][0] is None else int(rows[0][0])
    fixes = [
        f"ALTER TABLE {_q(target, table)} AUTO_INCREMENT = {int(auto)}"
        for table, auto in sorted(b.tables.items())
        if auto is not None and counters.get(table) is not None and counters[table] != auto
    ]
    if redo:
        fixes.append(
            f"ALTER DATABASE {qt} COMMENT = {_literal(conn, _warm.stamp_text(base, b.fingerprint))}"
        )
    if fixes:
        _run(conn, fixes)
    return None, ""


def _rebuild(
    conn: DbConnection, base: str, target: str, base_fp: str, reason: str, detail: str
) -> _warm.Outcome:
    """Clone (with the building stamp), fingerprint the copy, stamp it (`_warm.rebuild_loop`)."""

    def clone_once() -> None:
        _clone(conn, base, target, _warm.building_text(base))

    fp, note = _warm.rebuild_loop(
        base_fp, clone_once, lambda: _fingerprint(conn, target), lambda: _fingerprint(conn, base)
    )
    stamp = _literal(conn, _warm.stamp_text(base, fp))
    _run(conn, [f"ALTER DATABASE {quote_ident(target)} COMMENT = {stamp}"])
    detail = "; ".join(x for x in (detail, note) if x)
    return _warm.Outcome("rebuilt", reason, fp, detail)


@dataclass(frozen=True)
class Owned:
    """A database that carries a dagz stamp."""

    name: str
    stamp: _warm.Stamp
    size: int | None  # bytes of data and indexes


def list_owned(**connect_kwargs: object) -> list[Owned]:
    """Every database on the server whose comment is a dagz stamp, by name (none on servers
    without database comments)."""
    what = "listing dagz's MySQL databases failed"
    with _connection(None, what, connect_kwargs) as conn:
        if not _supports_stamps(conn):
            return []
        try:
            (rows,) = _run(
                conn,
                [
                    "SELECT s.SCHEMA_NAME, s.SCHEMA_COMMENT,"
                    " SUM(t.DATA_LENGTH + t.INDEX_LENGTH)"
                    " FROM information_schema.SCHEMATA s LEFT JOIN information_schema.TABLES t"
                    " ON t.TABLE_SCHEMA = s.SCHEMA_NAME"
                    " WHERE s.SCHEMA_COMMENT LIKE 'dagz:%'"
                    " GROUP BY s.SCHEMA_NAME, s.SCHEMA_COMMENT ORDER BY s.SCHEMA_NAME"
                ],
            )
        except _BatchError as err:
            raise _batch_error(what, err, connect_kwargs) from err.exc
    owned = []
    for name, comment, size in rows:
        stamp = _warm.parse_stamp(None if comment is None else str(comment))
        if stamp is not None:
            owned.append(Owned(str(name), stamp, None if size is None else int(size)))
    return owned
