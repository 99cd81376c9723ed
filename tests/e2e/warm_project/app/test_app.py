"""The sample project's tests: they use the schema (defaults, triggers, the view, the foreign
key), record what they observe, and leave rows and advanced counters behind (a kept worker
database must not show them to the next run)."""

from __future__ import annotations

import os
from typing import Any

import psycopg
import pymysql
import pytest
from conftest import DB, EVENTS, FAMILIES
from warmlib import MY_KW, PG_KW, MyConnection, PgConnection, record

Connection = PgConnection | MyConnection


def _pg() -> PgConnection:
    return psycopg.connect(dbname=DB, autocommit=True, **PG_KW)


def _my() -> MyConnection:
    return pymysql.connect(database=DB, autocommit=True, **MY_KW)


def _query(family: str, conn: Connection, sql: str) -> list[tuple[Any, ...]]:
    if isinstance(conn, psycopg.Connection):
        cur = conn.execute(sql.encode())
        return [tuple(r) for r in cur.fetchall()] if cur.description else []
    with conn.cursor() as cur:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []


def _use_schema(family: str, conn: Connection, tag: str) -> dict[str, Any]:
    """Inserts a kind and an item (defaults, triggers), reads the view, checks the foreign key;
    returns what it saw. The worker database is empty but for the bookkeeping table (prepare)."""
    q = lambda sql: _query(family, conn, sql)  # noqa: E731
    assert q("SELECT COUNT(*) FROM items") == [(0,)]
    assert q("SELECT COUNT(*) FROM kinds") == [(0,)]
    assert q("SELECT COUNT(*) FROM audit") == [(0,)]
    q(f"INSERT INTO kinds (name) VALUES ('k-{tag}')")
    (kind_id,) = q("SELECT MAX(id) FROM kinds")[0]
    q(f"INSERT INTO items (kind_id, label) VALUES ({kind_id}, 'item {tag}')")
    status, upper = q("SELECT status, label_upper FROM items")[0]
    assert upper == f"ITEM {tag.upper()}"
    assert q("SELECT msg FROM audit") == [(f"kind k-{tag}",)]
    assert q("SELECT label, kind FROM item_kinds") == [(f"item {tag}", f"k-{tag}")]
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        q("INSERT INTO items (kind_id, label) VALUES (999999, 'orphan')")
    if family == "pg":
        columns = q(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'items'"
            " ORDER BY ordinal_position"
        )
        indexes = q("SELECT indexname FROM pg_indexes WHERE tablename = 'items' ORDER BY 1")
    else:
        columns = q(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
            " AND TABLE_NAME = 'items' ORDER BY ORDINAL_POSITION"
        )
        indexes = q(
            "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'items' ORDER BY 1"
        )
    return {
        "db": q("SELECT current_database()" if family == "pg" else "SELECT DATABASE()")[0][0],
        "status_default": status,
        "columns": [c for (c,) in columns],
        "indexes": [i for (i,) in indexes],
        "migrations": [v for (v,) in q("SELECT version FROM schema_migrations ORDER BY 1")],
    }


@pytest.mark.parametrize("n", range(4))
def test_schema_in_use(n: int) -> None:
    """Every test uses every configured family, so each worker initializes each of them."""
    for family in FAMILIES:
        conn: Connection = _pg() if family == "pg" else _my()
        try:
            seen = _use_schema(family, conn, f"{family}{n}")
            # Leftovers: more rows and advanced counters, never cleaned by this test.
            for i in range(3):
                _query(family, conn, f"INSERT INTO audit (msg) VALUES ('leftover {n}.{i}')")
        finally:
            conn.close()
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        record(EVENTS, "observed", family=family, test=test, **seen)
