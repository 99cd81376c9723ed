"""PostgreSQL's part of warm start (the lifecycle is `dagz.engines.warm.provision`): reading the
base in one snapshot, keeping a worker database (its rows reset to the base's), and rebuilding
it with ``CREATE DATABASE … TEMPLATE``, an atomic copy during which no session can be connected
to the template.

The catalog parts of the base's and of the worker's fingerprints come from the stamp while the
change tokens it records hold (`dagz.engines.postgres.token`); else they are computed, and when
the worker database is kept all the same, its stamp gets fresh tokens. The base's token in the
stamp is taken before the clone: a base changed since then is caught.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from dagz._bypass import hard_bypass
from dagz.engines import warm
from dagz.engines.base import (
    DRIFTED,
    KEEP_FAILED,
    KEEP_TABLES,
    UNSUPPORTED,
    DbConnection,
    Kept,
    Stamp,
    close_quietly,
)
from dagz.engines.postgres import cloning
from dagz.engines.postgres.connection import (
    _connection,
    _error,
    _execute,
    _failing_as,
    _fetch,
    _literal,
    _maintenance,
    _missing,
    _one_line,
    _rollback,
    connect,
    quote_ident,
)
from dagz.engines.postgres.copying import _copy_in, _copy_out, _copy_table, _fill_order
from dagz.engines.postgres.fingerprints import (
    _begin,
    _fingerprint,
    _from,
    _read_rows,
    _read_state,
    _State,
    _state_from_json,
    _state_json,
    _Table,
    fingerprint,
)
from dagz.engines.postgres.token import _read_token_pages, _Token
from dagz.errors import EngineError

#: Seed rows the first worker of a run leaves in the run directory for the others, at most;
#: with more, every worker reads the base itself.
RUN_CACHE_BYTES = 64 << 20


@dataclass
class _Worker:
    """A worker database opened for a keep: its transaction is begun and its change token read
    (before the base is read, so that the workers of a run do this while one reads the base)."""

    conn: Any
    replica: bool
    token: _Token
    unchanged: bool
    pages: set[str]


def _open_worker(conn: DbConnection, stamp: Stamp) -> _Worker:
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


def _keep(source: _Base, worker: _Worker, stamp: Stamp) -> Kept:
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
            return Kept(DRIFTED)
        empty = [t for t in mine.data_tables() if t.has_pages]
        fill = [t for t in base.data_tables() if t.qn in base.with_rows]
        touched = {t.qn: t for t in [*empty, *fill]}
        special = sorted(q for q, t in touched.items() if set(t.triggers) & {"A", "R"})
        if special:
            _rollback(conn)
            detail = f"ENABLE ALWAYS/REPLICA triggers on {', '.join(special)}"
            return Kept(UNSUPPORTED, detail)
        if not worker.replica:
            triggered = sorted(q for q, t in touched.items() if t.triggers)
            order = _fill_order(fill, base.fks)
            if triggered or order is None:
                _rollback(conn)
                why = f"user triggers on {', '.join(triggered)}" if triggered else "a FK cycle"
                detail = f"restoring seed rows past {why} needs session_replication_role"
                return Kept(UNSUPPORTED, detail + " (superuser)")
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
    return Kept(None, restored=tuple(t.qn for t in fill))


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
            close_quietly(self.conn)
            self.conn = None


def _connect_base(base: str, what: str, connect_kwargs: dict[str, object]) -> Any | None:
    """A connection to `base`, or None when it does not exist."""
    try:
        return connect(base, **connect_kwargs)
    except EngineError:
        raise
    except Exception as exc:
        if _missing(exc, base):
            return None
        raise _error(f"{what}: cannot connect to {base!r}", exc, connect_kwargs) from exc


def _read_base_direct(
    base: str, stamp: Stamp | None, what: str, connect_kwargs: dict[str, object]
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
        close_quietly(conn)
        raise _error(f"{what} (reading {base!r})", exc, connect_kwargs) from exc
    return _Base(state, conn=conn)


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
        close_quietly(conn)
        return None, None
    return conn, (None if not found or found[0][0] is None else str(found[0][0]))


def _stamp(conn: DbConnection, target: str, text: str) -> None:
    _execute(conn, f"COMMENT ON DATABASE {quote_ident(target)} IS {_literal(text)}")


def _stamp_of(
    state: _State,
    base: str,
    base_token: _Token,
    worker_token: _Token,
    created: datetime | None = None,
) -> str:
    return warm.stamp_text(
        base,
        state.fingerprint,
        created,
        cat=state.catalog,
        bt=base_token.text(),
        wt=worker_token.text(),
    )


class _Session:
    """The primitives of one provisioning (`dagz.engines.base.WarmSession`)."""

    def __init__(
        self, base: str, target: str, what: str, connect_kwargs: dict[str, object], stack: ExitStack
    ) -> None:
        self.base, self.target, self.what, self.kw = base, target, what, connect_kwargs
        self._stack = stack
        self._worker_conn: Any = None
        self._worker: _Worker | None = None
        self._open_error = ""
        self._source: _Base | None = None
        self._copy: _State | None = None
        self._admin_conn: DbConnection | None = None
        stack.callback(self.release)

    def unsupported(self) -> str:
        return ""

    def read_worker(self, fresh: bool) -> tuple[bool, str | None]:
        conn, comment = _worker_stamp(self.target, self.kw)
        self._worker_conn = conn
        if conn is not None:
            # A killed run's prepared transactions: they would hold the rows a keep resets
            # (and the next tests' rows) and make the DROP of a rebuild fail.
            cloning.rollback_prepared(conn, self.what, self.kw)
        stamp = warm.parse_stamp(comment)
        if conn is not None and stamp is not None and stamp.complete and not fresh:
            try:
                self._worker = _open_worker(conn, stamp)
            except Exception as exc:
                self._open_error = _one_line(exc, self.kw)
        return conn is not None, comment

    def read_base(self, stamp: Stamp | None) -> _State | None:
        self._source = _read_base_direct(self.base, stamp, self.what, self.kw)
        return self._source.state

    def dump_base(self, state: _State, cache: Path) -> dict[str, Any] | None:
        source = self._source
        if source is None or not _save_rows(source, cache):
            return None
        source.close()
        source.data = cache
        return _state_json(state)

    def load_base(self, data: dict[str, Any], cache: Path) -> _State:
        state = _state_from_json(data)
        self._source = _Base(state, data=cache)
        return state

    def live_schema_fp(self, state: _State) -> str | None:
        return None  # compared in `keep`, from the stamp while the worker's token holds

    def keep(self, state: _State, stamp: Stamp) -> Kept:
        source, worker = self._source, self._worker
        if worker is None or source is None:
            return Kept(KEEP_FAILED, self._open_error)
        try:
            kept = _keep(source, worker, stamp)
            if kept.reason is None and not (state.unchanged and worker.unchanged):
                # A token did not hold: fresh ones.
                text = _stamp_of(state, self.base, state.token, worker.token, stamp.created)
                _stamp(worker.conn, self.target, text)
        except Exception as exc:
            return Kept(KEEP_FAILED, _one_line(exc, self.kw))
        return kept

    def release(self) -> None:
        if self._source is not None:
            self._source.close()
        if self._worker_conn is not None:
            _rollback(self._worker_conn)
            close_quietly(self._worker_conn)
            self._worker_conn = None

    def _admin(self) -> DbConnection:
        if self._admin_conn is None:
            admin = _maintenance((self.base, self.target), self.what, self.kw)
            self._admin_conn = self._stack.enter_context(admin)
        return self._admin_conn

    def make_empty(self, stamp: str) -> None:
        admin = self._admin()
        with _failing_as(self.what, self.kw):
            cloning._drop(admin, self.target)
        cloning._create_empty(admin, self.base, self.target, self.kw)
        with _failing_as(self.what, self.kw):
            _stamp(admin, self.target, stamp)

    def clone_building(self) -> None:
        admin = self._admin()
        create = cloning._template_sql(admin, self.base, self.target)
        with _failing_as(self.what, self.kw):
            cloning._drop(admin, self.target)
        cloning._create_retrying(admin, create, self.base, self.what, self.kw)
        with _failing_as(self.what, self.kw):
            _stamp(admin, self.target, warm.building_text(self.base))

    def copy_fingerprint(self) -> str:
        # A copy made by CREATE DATABASE … TEMPLATE holds the base's catalog rows as they are,
        # their xmin included: while the base's change token holds in the copy, the copy's
        # catalog is the one the base's catalog fingerprint was taken of (25-60 ms saved).
        base = self._source.state if self._source is not None else None
        since, catalog = (base.token, base.catalog) if base is not None else (None, None)
        with _failing_as(self.what, self.kw), _connection(self.target, self.what, self.kw) as conn:
            self._copy = _fingerprint(conn, since, catalog)
        return self._copy.fingerprint

    def base_fingerprint(self) -> str:
        return fingerprint(self.base, **self.kw)

    def stamp_final(self, fingerprint: str) -> None:
        copy, source = self._copy, self._source
        assert copy is not None
        assert source is not None
        assert source.state is not None
        text = _stamp_of(copy, self.base, source.state.token, copy.token)
        with _failing_as(self.what, self.kw):
            _stamp(self._admin(), self.target, text)


@contextlib.contextmanager
def warm_session(
    base: str, target: str, what: str, connect_kwargs: dict[str, object]
) -> Iterator[_Session]:
    """The primitives of provisioning `target` from `base`; closes what they opened."""
    with hard_bypass(), ExitStack() as stack:
        yield _Session(base, target, what, connect_kwargs, stack)
