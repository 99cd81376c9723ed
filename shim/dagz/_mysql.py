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
  copies rows only for tables that hold rows, then creates views and triggers. ``DEFINER``
  clauses are dropped (the cloning user becomes the definer: keeping another definer would need
  SUPER/SET USER).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from dagz._bypass import hard_bypass

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
    try:
        import MySQLdb

        return "MySQLdb", MySQLdb
    except ImportError:
        pass
    try:
        import pymysql

        return "pymysql", pymysql
    except ImportError:
        raise MySQLUtilError(
            "dagz: MySQL utilities need mysqlclient (MySQLdb) or PyMySQL; neither is importable"
        ) from None


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


def _clone(conn: DbConnection, base: str, target: str) -> str:
    lit = _literal(conn, base)
    qb, qt = quote_ident(base), quote_ident(target)
    # Round trip 1: drop the leftover target, read the base's catalog.
    _, _, schema, objects, columns, triggers = _run(
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
        ],
    )
    if not schema:
        _run(conn, [f"CREATE DATABASE {qt}"])
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
    if tables:
        show.append(_rows_union(base, tables))
    defs = _run(conn, show)
    table_ddl = [str(r[0][1]) for r in defs[: len(tables)]]
    view_ddl = {v: str(defs[len(tables) + i][0][1]) for i, v in enumerate(views)}
    trigger_defs = defs[len(tables) + len(views) : len(tables) + len(views) + len(trigger_names)]
    with_rows = [tables[int(row[0])] for row in defs[-1]] if tables else []

    # Round trip 3: database, tables (any order: foreign key checks are off), rows.
    work = [
        f"CREATE DATABASE {qt} CHARACTER SET {charset} COLLATE {collation}",
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
