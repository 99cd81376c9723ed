"""`--dagz-reset=rows` (issue 13): before each test, the rows of every table the previous test
changed go back to the base's contents (seed rows kept, sequences / auto-increment counters
restored), in every worker database auto mode built.

Right after a worker database is built (or kept) from its base it holds exactly the base's rows;
dagz then records a *signature* of each table — one query over all tables, on a connection of its
own kept open for the run — and, on PostgreSQL, the seed rows themselves (COPY, in memory). Before
each test the signature is read again; only tables (and sequences) whose part differs are reset,
in one transaction that waits at most `LOCK_TIMEOUT_S` for a lock (a transaction an earlier test
left open on a pooled connection would otherwise block it forever: that is an error naming it).

* PostgreSQL: per table ``count(*)`` and the largest ``xmin`` (any committed insert, update or
  delete shows), per sequence ``last_value``/``is_called``; the reset runs with
  ``session_replication_role = replica`` (no trigger or foreign key check fires, as in the
  warm-start keep), ``DELETE``, ``COPY … FROM STDIN`` of the recorded seed rows, ``setval``.
* MariaDB/MySQL: per table ``CHECKSUM TABLE`` and InnoDB's ``MODIFIED_COUNTER`` (every insert,
  update or delete, also rolled back ones, counts until InnoDB recomputes the table's
  statistics); the reset ``DELETE``s, refills from the base (``INSERT … SELECT``, as the warm-start
  keep does) with foreign key checks off, and sets the auto-increment counter to the base's.
"""

from __future__ import annotations

import contextlib
import io
import threading
from dataclasses import dataclass, field
from typing import Any

from dagz import _bypass, _shim
from dagz.engines.base import KEEP_TABLES
from dagz.errors import DagzError

#: How long a reset waits for a lock before it fails the test.
LOCK_TIMEOUT_S = 2

_lock = threading.Lock()
#: (engine, worker database) -> its reset state, in this worker.
_managed: dict[tuple[int, str], _Db] = {}


@dataclass
class _Db:
    engine: int
    base: str
    target: str
    conn: Any
    tables: list[str]  # quoted qualified names (PostgreSQL) / names (MySQL)
    clean: list[str] = field(default_factory=list)
    seed: dict[str, bytes] = field(default_factory=dict)  # PostgreSQL: COPY text of seed rows
    seqvals: dict[str, tuple[str, str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    resets: int = 0


# -- PostgreSQL ---------------------------------------------------------------------------------


def _pg_open(db: _Db) -> None:
    """Reads the tables, sequences and seed rows of the freshly built worker database."""
    from dagz.engines.postgres.copying import _copy_out
    from dagz.engines.postgres.fingerprints import _begin, _from, _read_state

    conn = db.conn
    _begin(conn, snapshot=True)
    try:
        state = _read_state(conn, rows="exists", seqs=True)
        tables = state.data_tables()
        for t in tables:
            if t.qn in state.with_rows:
                buf = io.BytesIO()
                _copy_out(conn, t, buf)
                db.seed[t.qn] = buf.getvalue()
    finally:
        _pg_exec(conn, "ROLLBACK")
    db.tables = [t.qn for t in tables]
    db.extra["table"] = {t.qn: t for t in tables}
    db.seqvals = dict(state.seqvals)
    parts = [
        f"(SELECT count(*)::text || ':' || coalesce(max(xmin::text), '') FROM {_from(t)})"
        for t in tables
    ] + [f"(SELECT last_value::text || ':' || is_called::text FROM {qn})" for qn in state.sequences]
    db.extra["sequences"] = list(state.sequences)
    _pg_exec(conn, "DEALLOCATE ALL")
    if parts:
        _pg_exec(conn, f"PREPARE dagz_signature AS SELECT ARRAY[{', '.join(parts)}]::text[]")
    db.clean = _pg_signature(db)


def _pg_exec(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return list(cur.fetchall()) if cur.description else []
    finally:
        cur.close()


def _pg_signature(db: _Db) -> list[str]:
    if not db.tables and not db.extra["sequences"]:
        return []
    rows = _pg_exec(db.conn, "EXECUTE dagz_signature")
    return [str(x) for x in rows[0][0]]


def _pg_reset(db: _Db, changed: list[int]) -> list[str]:
    from dagz.engines.postgres.connection import _literal
    from dagz.engines.postgres.copying import _copy_in
    from dagz.engines.postgres.fingerprints import _from

    n = len(db.tables)
    tables = [db.extra["table"][db.tables[i]] for i in changed if i < n]
    seqs = [db.extra["sequences"][i - n] for i in changed if i >= n]
    conn = db.conn
    begin = (
        f"BEGIN; SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'; "
        "SET LOCAL session_replication_role = replica; SET LOCAL synchronous_commit = off"
    )
    if tables:
        ctes = ", ".join(f"d{i} AS (DELETE FROM {_from(t)})" for i, t in enumerate(tables))
        begin += f"; WITH {ctes} SELECT 1"
    _pg_exec(conn, begin)
    try:
        for t in tables:
            if t.qn in db.seed:
                _copy_in(conn, t, io.BytesIO(db.seed[t.qn]))
        setvals = [
            f"setval({_literal(qn)}::regclass, {int(db.seqvals[qn][0])}, {db.seqvals[qn][1]})"
            for qn in seqs
            if qn in db.seqvals
        ]
        _pg_exec(conn, f"SELECT {', '.join(setvals)}; COMMIT" if setvals else "COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            _pg_exec(conn, "ROLLBACK")
        raise
    return [t.qn for t in tables] + seqs


# -- MySQL / MariaDB ----------------------------------------------------------------------------


def _my_rows(conn: Any, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        return list(cur.fetchall()) if cur.description else []
    finally:
        cur.close()


def _my_open(db: _Db) -> None:
    from dagz.engines.mysql.connection import _literal, _q

    conn = db.conn
    rows = _my_rows(
        conn,
        "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES"
        " WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
        (db.target,),
    )
    db.tables = [str(r[0]) for r in rows if str(r[0]) not in KEEP_TABLES]
    db.extra["auto"] = {str(r[0]): r[1] for r in rows if r[1] is not None}
    cols = _my_rows(
        conn,
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS"
        " WHERE TABLE_SCHEMA = %s AND IS_GENERATED = 'NEVER' ORDER BY TABLE_NAME,"
        " ORDINAL_POSITION",
        (db.target,),
    )
    listed: dict[str, list[str]] = {}
    for table, col in cols:
        listed.setdefault(str(table), []).append(str(col))
    db.extra["cols"] = listed
    seeded = [
        t
        for t in db.tables
        if _my_rows(conn, f"SELECT EXISTS (SELECT 1 FROM {_q(db.base, t)})")[0][0]
    ]
    db.extra["seeded"] = set(seeded)
    like = db.target.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "/%"
    db.extra["signature"] = [
        "CHECKSUM TABLE " + ", ".join(_q(db.target, t) for t in db.tables),
        "SELECT NAME, MODIFIED_COUNTER FROM information_schema.INNODB_SYS_TABLESTATS"
        f" WHERE NAME LIKE {_literal(conn, like)}",
    ]
    db.clean = _my_signature(db)


def _my_signature(db: _Db) -> list[str]:
    """One round trip: the tables' checksums and InnoDB modification counters."""
    from dagz.engines.mysql import batch

    if not db.tables:
        return []
    sums_rows, counter_rows = batch._run(db.conn, db.extra["signature"])
    sums = {str(r[0]).rsplit(".", 1)[-1]: str(r[1]) for r in sums_rows}
    prefix = db.target + "/"
    counters = {str(r[0])[len(prefix) :]: str(r[1]) for r in counter_rows}
    return [f"{sums.get(t, '')}:{counters.get(t, '')}" for t in db.tables]


def _my_reset(db: _Db, changed: list[int]) -> list[str]:
    from dagz.engines.mysql.connection import _literal, _q, quote_ident

    tables = [db.tables[i] for i in changed]
    conn = db.conn
    work = [
        f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT_S}",
        f"SET SESSION lock_wait_timeout = {LOCK_TIMEOUT_S}",
        "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
        "SET SESSION FOREIGN_KEY_CHECKS = 0",
        "START TRANSACTION",
    ]
    work += [f"DELETE FROM {_q(db.target, t)}" for t in tables]
    for t in tables:
        if t in db.extra["seeded"]:
            listed = ", ".join(quote_ident(c) for c in db.extra["cols"].get(t, []))
            work.append(
                f"INSERT INTO {_q(db.target, t)} ({listed}) SELECT {listed} FROM {_q(db.base, t)}"
            )
    work.append("COMMIT")
    autos = [t for t in tables if t in db.extra["auto"]]
    # The counters after the refill (one table each: MariaDB then opens only that table); an
    # ALTER TABLE costs milliseconds, so only counters that differ from the base's are set.
    work += [
        "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        f"{_literal(conn, db.target)} AND TABLE_NAME = {_literal(conn, t)}"
        for t in autos
    ]
    work.append("SET SESSION FOREIGN_KEY_CHECKS = 1")
    from dagz.engines.mysql import batch

    try:
        results = batch._run(conn, work)  # one round trip
    except batch._BatchError as exc:
        with contextlib.suppress(Exception):
            batch._run(conn, ["ROLLBACK", "SET SESSION FOREIGN_KEY_CHECKS = 1"])
        raise exc.exc from None
    now = results[-1 - len(autos) : -1]
    fixes = [
        f"ALTER TABLE {_q(db.target, t)} AUTO_INCREMENT = {int(db.extra['auto'][t])}"
        for t, rows in zip(autos, now, strict=True)
        if not rows or rows[0][0] is None or int(rows[0][0]) != int(db.extra["auto"][t])
    ]
    if fixes:
        batch._run(conn, fixes)
    return tables


# -- the lifecycle --------------------------------------------------------------------------------


def manage(engine: int, base: str, target: str, connect_kwargs: dict[str, object]) -> None:
    """Starts resetting `target` (just built or kept from `base`, so holding the base's rows)."""
    from dagz.engines import for_engine

    key = (engine, target)
    with _lock:
        if key in _managed:
            return
    with _bypass.hard_bypass():
        if engine == _shim.ENGINE_POSTGRES:
            conn = for_engine(engine).connect(target, **connect_kwargs)
        else:
            from dagz.engines.mysql.connection import _open

            conn = _open(target, True, dict(connect_kwargs))  # multi-statement batches
        db = _Db(engine, base, target, conn, [])
        try:
            _pg_open(db) if engine == _shim.ENGINE_POSTGRES else _my_open(db)
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
    with _lock:
        _managed[key] = db


def before_test() -> list[tuple[str, list[str]]]:
    """Resets what changed in every managed database; (database, what was reset) for each
    database that needed it. A failure raises `DagzError` naming the database."""
    with _lock:
        dbs = list(_managed.values())
    done = []
    for db in dbs:
        with _bypass.hard_bypass():
            try:
                reset = _check_and_reset(db)
            except DagzError:
                raise
            except Exception as exc:
                raise DagzError(_failure(db, exc)) from exc
        if reset:
            done.append((db.target, reset))
    return done


def _check_and_reset(db: _Db) -> list[str]:
    pg = db.engine == _shim.ENGINE_POSTGRES
    now = _pg_signature(db) if pg else _my_signature(db)
    if now == db.clean:
        return []
    changed = [i for i, (a, b) in enumerate(zip(now, db.clean, strict=True)) if a != b]
    reset = _pg_reset(db, changed) if pg else _my_reset(db, changed)
    db.clean = _pg_signature(db) if pg else _my_signature(db)
    db.resets += 1
    return reset


def _failure(db: _Db, exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    args = getattr(exc, "args", ())
    locked = code == "55P03" or (args and args[0] in (1205, 1213)) or "lock" in text.lower()
    hint = (
        f"it waited more than {LOCK_TIMEOUT_S}s for a lock: a connection of an earlier test "
        "(kept by a pool?) holds one in an open transaction; end that transaction at the end "
        "of each test"
        if locked
        else text
    )
    return f"dagz: --dagz-reset=rows: resetting the rows of {db.target!r} failed: {hint}"


def close_all() -> None:
    with _lock:
        dbs = list(_managed.values())
        _managed.clear()
    for db in dbs:
        with contextlib.suppress(Exception):
            db.conn.close()
