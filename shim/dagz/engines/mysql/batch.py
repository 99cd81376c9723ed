"""MySQL statements sent as multi-statement batches (one round trip for many statements); each
statement of a batch yields exactly one result, so a failure names the statement that failed.

Every engine module runs its statements through this module's `_run` (looked up here at call
time).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from dagz.engines.base import LOCK_HINT, DbConnection
from dagz.engines.mysql.connection import _errno, _error, _literal, _q, sessions_in
from dagz.errors import EngineError

#: Multi-statement batches are split so one never nears max_allowed_packet (16 MB by default).
_BATCH_BYTES = 1 << 20

#: How long dagz's statements wait for a metadata or row lock (a leaked transaction of a test
#: would otherwise block them: MySQL's own default for metadata locks is a year).
LOCK_WAIT_SECONDS = 10

#: ER_LOCK_WAIT_TIMEOUT.
_LOCK_WAIT_TIMEOUT = 1205


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


def _batch_error(what: str, err: _BatchError, connect_kwargs: dict[str, object]) -> EngineError:
    return _error(f"{what} (at `{_short(err.statement)}`)", err.exc, connect_kwargs)


def _rows_union(schema: str, tables: Sequence[str]) -> str:
    """One SELECT returning the index of every table that holds a row."""
    return " UNION ALL ".join(
        f"(SELECT {i} FROM {_q(schema, t)} LIMIT 1)" for i, t in enumerate(tables)
    )


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
                sessions_in(_literal(conn, db_name), "ID, USER, HOST, COMMAND, STATE, TIME")
                + " ORDER BY ID"
            ],
        )
    except _BatchError:
        return what
    sessions = "; ".join(
        f"id {sid} user {user} host {host} command {command} state {state or '-'} time {secs}s"
        for sid, user, host, command, state, secs in rows
    )
    return (
        f"{what}: it waited more than {LOCK_WAIT_SECONDS}s for a lock: {LOCK_HINT}"
        f" (other sessions in {db_name!r}: {sessions or 'none now'}){_prepared_xa(conn)}"
    )


def _prepared_xa(conn: DbConnection) -> str:
    """The prepared XA transactions of the server, as a sentence for a lock-wait failure: one a
    killed test left (XA START … XA PREPARE, then its session ended) holds the locks of every
    table it touched until someone ends it, and MariaDB does not say which database each one
    touches (XA RECOVER lists ids only; INNODB_TRX has no XA id), so dagz, which only destroys
    what it made, names them and the command instead of rolling them back. "" when none (or
    XA RECOVER is not allowed)."""
    try:
        (rows,) = _run(conn, ["XA RECOVER FORMAT='SQL'"])
    except _BatchError:
        return ""
    xids = [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for *_, x in rows]
    if not xids:
        return ""
    rollback = "; ".join(f"XA ROLLBACK {x}" for x in xids)
    return (
        f"; prepared XA transactions on the server, any of which may hold it (MariaDB does not"
        f" say which database an XA transaction touches): {', '.join(xids)} — roll back those"
        f" your tests left: {rollback}"
    )
