"""Run with a broken ``rewrite_db_name`` (``DZ_REWRITE=nonstr|long``): every connect below must
fail with a ``dagz:`` message — never land in the base database (each writes a row if it does)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from dzsample import DB, PG_KW, connect, execute, land


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2", "mysqlclient", "pymysql"])
def test_connect(driver: str) -> None:
    conn = connect(driver)
    try:
        land(driver, conn)
        execute(conn, "INSERT INTO items (id, label) VALUES (1, %s)", (f"leak-{driver}",))
    finally:
        conn.close()


async def _asyncpg() -> None:
    conn: Any = await asyncpg.connect(database=DB, **PG_KW)
    try:
        await conn.execute("INSERT INTO items (id, label) VALUES (1, 'leak-asyncpg')")
    finally:
        await conn.close()


def test_connect_asyncpg() -> None:
    asyncio.run(_asyncpg())
