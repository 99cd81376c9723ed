"""PyMySQL's `CALL` rule (issue 12), the C hooks' (`src/hooks_mysql_call.rs`) for the pure-Python
driver: before a statement that calls stored procedures is sent on a rerouted connection, the
body of each procedure of the current database it names is read from
``information_schema.ROUTINES`` on the same connection and classified by the shim; one that can
change the database (MariaDB keeps a ``USE`` run by ``EXECUTE IMMEDIATE`` inside a procedure of
the caller's database after ``CALL``) is refused. A procedure of another database is harmless:
the server switches back after it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dagz import _shim
from dagz.config import DagzError

#: Nesting of CALLs followed into procedure bodies.
MAX_DEPTH = 4

Run = Callable[[str], Sequence[Sequence[Any]]]


def _hex(value: bytes) -> str:
    return f"CONVERT(X'{value.hex()}' USING utf8mb4)"


def targets(encoded: str) -> list[tuple[bytes, bytes]]:
    """The (database, name) pairs of `dagz_mysql_rewrite_statement`'s STMT_CALL text (database
    b"": the current one)."""
    out = []
    for pair in filter(None, encoded.split(",")):
        db, _, name = pair.partition(":")
        out.append((bytes.fromhex(db), bytes.fromhex(name)))
    return out


def _refused(what: str) -> DagzError:
    return DagzError(
        f"dagz: PyMySQL: refused CALL of {what}: it could move this connection out of its worker"
        " database; run it under dagz.bypass() if it must run"
    )


def check(encoded: str, run: Run, switches: Callable[[int, str], bool]) -> None:
    """Raises DagzError when a procedure the statement calls (`encoded`, see `targets`) may
    change the current database. `run(sql)`: the rows of one query on the connection;
    `switches(kind, name)`: whether a body the shim classified as `kind` (naming the database
    `name`, "" when unknown) moves the connection somewhere dagz reroutes."""
    pending = [(t, 0) for t in targets(encoded)]
    seen: set[tuple[bytes, bytes]] = set()
    while pending:
        (db, name), depth = pending.pop()
        if not name or depth >= MAX_DEPTH:
            raise _refused("a procedure dagz cannot tell")
        if (db, name) in seen:
            continue
        seen.add((db, name))
        rows = run(
            "SELECT ROUTINE_DEFINITION, ROUTINE_SCHEMA <=> DATABASE() FROM"
            " information_schema.ROUTINES WHERE ROUTINE_TYPE = 'PROCEDURE' AND ROUTINE_SCHEMA = "
            f"{_hex(db) if db else 'DATABASE()'} AND ROUTINE_NAME = {_hex(name)}"
        )
        if not rows or str(rows[0][1]) == "0":
            continue  # no such procedure (the server says so at CALL), or another database's
        body = rows[0][0]
        label = f"procedure {name.decode('utf-8', 'replace')!r}"
        if body is None:
            raise _refused(f"{label}, whose body dagz cannot read")
        text = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else bytes(body)
        kind, found = _shim.mysql_statement(text)
        if kind == _shim.STMT_CALL:
            pending.extend((t, depth + 1) for t in targets(found))
        elif kind != _shim.STMT_OTHER and switches(kind, found):
            raise _refused(f"{label}, whose body can change the current database")
