"""The audit log on MariaDB/MySQL (mysqlclient): every write of the shop is recorded here."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import MySQLdb

from shopapp.settings import Settings, load


@dataclass(frozen=True)
class AuditEntry:
    id: int
    occurred_at: dt.datetime
    actor: str
    action: str
    entity: str
    entity_id: int
    details: dict[str, Any]


_COLUMNS = "id, occurred_at, actor, action, entity, entity_id, details"


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    return AuditEntry(
        int(row[0]), row[1], str(row[2]), str(row[3]), str(row[4]), int(row[5]), json.loads(row[6])
    )


class AuditLog:
    """One connection to the audit database (autocommit); not shared between threads."""

    def __init__(self, settings: Settings | None = None, actor: str = "shopapp") -> None:
        self.settings = settings or load()
        self.actor = actor
        self._conn: MySQLdb.connections.Connection | None = None

    def _connection(self) -> MySQLdb.connections.Connection:
        if self._conn is None:
            self._conn = MySQLdb.connect(**self.settings.mysql_kwargs(), autocommit=True)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self._connection().cursor()
        try:
            cur.execute(sql, params or None)
            return list(cur.fetchall())
        finally:
            cur.close()

    # -- writing ------------------------------------------------------------------------------

    def record(self, action: str, entity: str, entity_id: int, **details: object) -> int:
        """Appends one entry; returns its id."""
        cur = self._connection().cursor()
        try:
            cur.execute(
                "INSERT INTO audit_log (actor, action, entity, entity_id, details)"
                " VALUES (%s, %s, %s, %s, %s)",
                (self.actor, action, entity, entity_id, json.dumps(details, sort_keys=True)),
            )
            return int(cur.lastrowid)
        finally:
            cur.close()

    def record_many(self, entries: list[tuple[str, str, int, dict[str, object]]]) -> int:
        """Appends several entries in one statement; returns how many."""
        if not entries:
            return 0
        cur = self._connection().cursor()
        try:
            cur.executemany(
                "INSERT INTO audit_log (actor, action, entity, entity_id, details)"
                " VALUES (%s, %s, %s, %s, %s)",
                [
                    (self.actor, action, entity, entity_id, json.dumps(details, sort_keys=True))
                    for action, entity, entity_id, details in entries
                ],
            )
            return len(entries)
        finally:
            cur.close()

    def export_since_last(self) -> list[AuditEntry]:
        """The entries after the previous export, recorded as a new export (if any)."""
        rows = self._query("SELECT COALESCE(MAX(last_audit_id), 0) FROM audit_exports")
        last = int(rows[0][0])
        entries = [
            _entry(r)
            for r in self._query(
                f"SELECT {_COLUMNS} FROM audit_log WHERE id > %s ORDER BY id", (last,)
            )
        ]
        if entries:
            self._query(
                "INSERT INTO audit_exports (last_audit_id, entries) VALUES (%s, %s)",
                (entries[-1].id, len(entries)),
            )
        return entries

    # -- reading ------------------------------------------------------------------------------

    def entries(
        self, entity: str | None = None, entity_id: int | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        where, params = [], []
        for column, value in (("entity", entity), ("entity_id", entity_id), ("action", action)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._query(f"SELECT {_COLUMNS} FROM audit_log{clause} ORDER BY id", tuple(params))
        return [_entry(r) for r in rows]

    def count(self, action: str | None = None) -> int:
        if action is None:
            return int(self._query("SELECT COUNT(*) FROM audit_log")[0][0])
        return int(self._query("SELECT COUNT(*) FROM audit_log WHERE action = %s", (action,))[0][0])

    def counters(self) -> dict[str, int]:
        """Entries per action, kept by the ``audit_log_count`` trigger."""
        return {str(a): int(n) for a, n in self._query("SELECT action, n FROM audit_counters")}

    def summary(self) -> dict[str, tuple[int, int, int]]:
        """Per entity: (events, distinct entities, last entry id), from a view."""
        rows = self._query("SELECT entity, events, entities, last_id FROM audit_entity_summary")
        return {str(e): (int(a), int(b), int(c)) for e, a, b, c in rows}

    def exports(self) -> list[tuple[int, int, int]]:
        """(id, last_audit_id, entries) of every export."""
        rows = self._query("SELECT id, last_audit_id, entries FROM audit_exports ORDER BY id")
        return [(int(a), int(b), int(c)) for a, b, c in rows]

    def database(self) -> str:
        return str(self._query("SELECT DATABASE()")[0][0])
