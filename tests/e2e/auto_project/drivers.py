"""The sample suite of auto mode: every driver of both families, fixed primary keys, no conftest.

Each test inserts rows with fixed keys into ``items`` of the base database ``DZ_DB`` (the same
name on PostgreSQL and MariaDB), waits, counts them exactly, and deletes its own rows: it passes
serially and collides when several processes share one database. Each test records where the
server says it is (``current_database()`` / ``DATABASE()``) in ``DZ_EVENTS``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from typing import Protocol

import adbc_driver_postgresql.dbapi
import asyncpg
import MySQLdb
import psycopg
import psycopg2
import pymysql

DB = os.environ["DZ_DB"]
HOLD_S = 0.15
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


class Cursor(Protocol):
    def execute(self, query: str, /) -> object: ...
    def fetchone(self) -> Sequence[int | str]: ...
    def close(self) -> None: ...


class Conn(Protocol):
    def cursor(self) -> Cursor: ...
    def close(self) -> None: ...


def record(driver: str, db: str) -> None:
    entry = {"driver": driver, "db": db, "worker": os.environ.get("PYTEST_XDIST_WORKER", "")}
    fd = os.open(os.environ["DZ_EVENTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def rows(case: int) -> list[int]:
    return list(range(1, 2 + case % 3))


def dbapi_case(driver: str, conn: Conn, case: int, current: str) -> None:
    """The body for a DB-API connection (values inline: the drivers' parameter styles differ,
    and ADBC binds a tuple as columns of a batch)."""
    cur = conn.cursor()
    try:
        cur.execute(current)
        record(driver, str(cur.fetchone()[0]))
        label = f"{driver}-{case}"
        cur.execute("SELECT count(*) FROM items")
        assert cur.fetchone()[0] == 0, "rows of another test are visible"
        keys = rows(case)
        for key in keys:
            cur.execute(f"INSERT INTO items (id, label) VALUES ({key}, '{label}')")
        time.sleep(HOLD_S)
        cur.execute("SELECT count(*) FROM items")
        assert cur.fetchone()[0] == len(keys)
        cur.execute(f"DELETE FROM items WHERE label = '{label}'")
    finally:
        cur.close()
        conn.close()


def psycopg2_case(case: int) -> None:
    conn = psycopg2.connect(dbname=DB, **PG)
    conn.autocommit = True
    dbapi_case("psycopg2", conn, case, "SELECT current_database()")


def adbc_case(case: int) -> None:
    uri = f"postgresql://postgres@127.0.0.1:5432/{DB}"
    conn = adbc_driver_postgresql.dbapi.connect(uri, autocommit=True)
    dbapi_case("adbc", conn, case, "SELECT current_database()")


def pymysql_case(case: int) -> None:
    conn = pymysql.connect(database=DB, autocommit=True, **MY)
    dbapi_case("pymysql", conn, case, "SELECT DATABASE()")


def mysqlclient_case(case: int) -> None:
    conn = MySQLdb.connect(database=DB, autocommit=True, **MY)
    dbapi_case("mysqlclient", conn, case, "SELECT DATABASE()")


def psycopg_async_case(case: int) -> None:
    async def body() -> None:
        conn = await psycopg.AsyncConnection.connect(dbname=DB, autocommit=True, **PG)
        async with conn:
            cur = await conn.execute("SELECT current_database()")
            record("psycopg-async", str((await cur.fetchone())[0]))
            cur = await conn.execute("SELECT count(*) FROM items")
            assert (await cur.fetchone())[0] == 0, "rows of another test are visible"
            label = f"psycopg-async-{case}"
            for key in rows(case):
                await conn.execute("INSERT INTO items VALUES (%s, %s)", (key, label))
            await asyncio.sleep(HOLD_S)
            cur = await conn.execute("SELECT count(*) FROM items")
            assert (await cur.fetchone())[0] == len(rows(case))
            await conn.execute("DELETE FROM items WHERE label = %s", (label,))

    asyncio.run(body())


def asyncpg_case(case: int) -> None:
    async def body() -> None:
        conn = await asyncpg.connect(database=DB, **PG)
        try:
            record("asyncpg", str(await conn.fetchval("SELECT current_database()")))
            assert await conn.fetchval("SELECT count(*) FROM items") == 0, "rows visible"
            label = f"asyncpg-{case}"
            for key in rows(case):
                await conn.execute("INSERT INTO items VALUES ($1, $2)", key, label)
            await asyncio.sleep(HOLD_S)
            assert await conn.fetchval("SELECT count(*) FROM items") == len(rows(case))
            await conn.execute("DELETE FROM items WHERE label = $1", label)
        finally:
            await conn.close()

    asyncio.run(body())
