"""MySQL's part of warm start (the lifecycle is `dagz.engines.warm.provision`): one server
connection reads the worker database and the base, keeps the worker database (its rows reset to
the base's) or rebuilds it with `_clone`. Warm start needs database comments (the stamp):
MariaDB >= 10.5; other servers always clone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagz.engines import warm
from dagz.engines.base import CHANGED, KEEP_FAILED, DbConnection, Kept, Stamp
from dagz.engines.mysql import batch
from dagz.engines.mysql.batch import _batch_error, _BatchError, _with_sessions
from dagz.engines.mysql.cloning import _clone, _strip_definer
from dagz.engines.mysql.connection import (
    _connection,
    _literal,
    _q,
    _supports_stamps,
    quote_ident,
)
from dagz.engines.mysql.fingerprints import (
    _ALL_PARTS,
    _RECHECK_PARTS,
    _Catalog,
    _catalog,
    _fingerprint,
    _Listing,
    _part_sql,
    _read,
    _second_pass,
)
from dagz.engines.mysql.truncation import _empty_statements


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


def _keep_batch(
    conn: DbConnection, base: str, target: str, b: _Listing, t: _Listing, redo: list[Any]
) -> list[str]:
    """The statements of a keep up to the rows' COMMIT and the triggers made again."""
    qt = quote_ident(target)
    delete_triggered = {table for _n, table, event in b.catalog_.triggers if event == "DELETE"}
    out = [f"USE {qt}"]
    if redo:
        out.append(f"ALTER DATABASE {qt} COMMENT = {_literal(conn, warm.building_text(base))}")
    out += [
        "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
        "SET SESSION FOREIGN_KEY_CHECKS = 0",
        "SET SESSION UNIQUE_CHECKS = 0",
    ]
    emptying = _empty_statements(target, list(t.with_rows), delete_triggered, [])
    # TRUNCATE and DROP TRIGGER commit implicitly: first; the rows in one transaction (one
    # redo log flush instead of one per statement).
    out += [x for x in emptying if x.startswith("TRUNCATE")]
    out += [f"DROP TRIGGER {_q(target, name)}" for name, _mode, _sql in redo]
    out.append("START TRANSACTION")
    out += [x for x in emptying if not x.startswith("TRUNCATE")]
    for table in b.with_rows:
        listed = ", ".join(quote_ident(c) for c in b.cols.get(table, []))
        out.append(
            f"INSERT INTO {_q(target, table)} ({listed}) SELECT {listed} FROM {_q(base, table)}"
        )
    out.append("COMMIT")
    for _name, sql_mode, statement in redo:
        out.append(f"SET SESSION sql_mode = {_literal(conn, str(sql_mode))}")
        out.append(_strip_definer(str(statement), "TRIGGER"))
    out += ["SET SESSION FOREIGN_KEY_CHECKS = 1", "SET SESSION UNIQUE_CHECKS = 1"]
    return out


def _keep(conn: DbConnection, base: str, target: str, read: _BaseRead, t: _Listing) -> Kept:
    """Makes the kept `target` hold exactly the base's rows (or says why to rebuild instead).

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
    b = read.listing
    assert b is not None
    insert_triggers = [(n, table) for n, table, event in b.catalog_.triggers if event == "INSERT"]
    refilled = set(b.with_rows)
    redo = [
        (name, rows[0][1], rows[0][2])
        for (name, table), rows in zip(insert_triggers, read.trigger_defs, strict=True)
        if table in refilled
    ]
    work = _keep_batch(conn, base, target, b, t, redo)
    # The counters of the tables just emptied or filled (one table each: MariaDB then opens
    # only that table), the others were read before.
    touched = sorted(set(b.with_rows) | set(t.with_rows))
    lt = _literal(conn, target)
    work += [
        "SELECT AUTO_INCREMENT FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = {lt} AND TABLE_NAME = {_literal(conn, table)}"
        for table in touched
    ]
    recheck = [p for p in _ALL_PARTS if p in _RECHECK_PARTS]
    work += [_part_sql(_literal(conn, base), part) for part in recheck]
    results = batch._run(conn, work)
    after = _catalog(results[-len(recheck) :], recheck).parts
    if any(after[p] != b.parts[p] for p in recheck):
        return Kept(CHANGED, "the base changed while its copy was being kept")
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
        stamp = _literal(conn, warm.stamp_text(base, b.fingerprint))
        fixes.append(f"ALTER DATABASE {quote_ident(target)} COMMENT = {stamp}")
    if fixes:
        batch._run(conn, fixes)
    return Kept(None, restored=tuple(b.with_rows))


class _Session:
    """The primitives of one provisioning (`dagz.engines.base.WarmSession`), on one server
    connection."""

    def __init__(
        self, conn: DbConnection, base: str, target: str, what: str, kw: dict[str, object]
    ) -> None:
        self.conn, self.base, self.target, self.what, self.kw = conn, base, target, what, kw
        self._target: _Listing | None = None
        self._base: _BaseRead | None = None
        self._stamps: bool | None = None

    def unsupported(self) -> str:
        if self._stamps is None:
            self._stamps = _supports_stamps(self.conn)
        return "" if self._stamps else "warm start needs database comments (MariaDB >= 10.5)"

    def read_worker(self, fresh: bool) -> tuple[bool, str | None]:
        lt = _literal(self.conn, self.target)
        listings, (schemata,) = _read(
            self.conn,
            [self.target],
            [
                "SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA"
                f" WHERE SCHEMA_NAME = {lt}"
            ],
        )
        self._target = listings[self.target]
        comment = None if not schemata or schemata[0][1] is None else str(schemata[0][1])
        return bool(schemata), comment

    def read_base(self, stamp: Stamp | None) -> _Listing | None:
        self._base = _read_base(self.conn, self.base)
        return self._base.listing

    def dump_base(self, listing: _Listing, cache: Path) -> dict[str, Any] | None:
        assert self._base is not None
        return _base_json(self._base)

    def load_base(self, data: dict[str, Any], cache: Path) -> _Listing:
        self._base = _base_from_json(data)
        assert self._base.listing is not None
        return self._base.listing

    def live_schema_fp(self, listing: _Listing) -> str | None:
        assert self._target is not None
        _second_pass(self.conn, [(self.target, self._target, "exists")], listing.cols)
        return self._target.schema_fp

    def keep(self, listing: _Listing, stamp: Stamp) -> Kept:
        assert self._target is not None
        assert self._base is not None
        try:
            return _keep(self.conn, self.base, self.target, self._base, self._target)
        except _BatchError as err:
            return Kept(KEEP_FAILED, _batch_error(self.what, err, self.kw).args[0])

    def release(self) -> None:
        pass  # one connection, closed with the session

    def make_empty(self, stamp: str) -> None:
        _clone(self.conn, self.base, self.target, stamp)

    def clone_building(self) -> None:
        stamp = warm.building_text(self.base) if self._stamps else None
        _clone(self.conn, self.base, self.target, stamp)

    def copy_fingerprint(self) -> str:
        return _fingerprint(self.conn, self.target)

    def base_fingerprint(self) -> str:
        return _fingerprint(self.conn, self.base)

    def stamp_final(self, fingerprint: str) -> None:
        stamp = _literal(self.conn, warm.stamp_text(self.base, fingerprint))
        batch._run(self.conn, [f"ALTER DATABASE {quote_ident(self.target)} COMMENT = {stamp}"])


@contextlib.contextmanager
def warm_session(
    base: str, target: str, what: str, connect_kwargs: dict[str, object]
) -> Iterator[_Session]:
    """The primitives of provisioning `target` from `base`, on one server connection; a failed
    batch becomes an `EngineError` naming its statement."""
    with _connection(None, what, connect_kwargs) as conn:
        try:
            yield _Session(conn, base, target, what, connect_kwargs)
        except _BatchError as err:
            what = _with_sessions(conn, what, target, err)
            raise _batch_error(what, err, connect_kwargs) from err.exc
