"""Drivers the shim cannot see in C (PyMySQL, asyncpg, psycopg's pure-Python implementation):
dagz hooks them from Python; each must land in the per-worker database."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg
import psycopg
import pymysql
from dzsample import DB, MYSQL_KW, PG_KW, PG_URI, land, record, scalar, worker_db


def test_pymysql_connect() -> None:
    conn = pymysql.connect(database=DB, autocommit=True, **MYSQL_KW)
    try:
        assert land("pymysql", conn) == worker_db()
    finally:
        conn.close()


def test_pymysql_db_keyword_and_select_db() -> None:
    conn = pymysql.connect(db=DB, autocommit=True, **MYSQL_KW)
    try:
        assert land("pymysql", conn, via="db=") == worker_db()
        conn.select_db("mysql")
        assert scalar(conn, "SELECT DATABASE()") == "mysql"  # a system database: left alone
        conn.select_db(DB)
        assert land("pymysql", conn, via="select_db") == worker_db()
    finally:
        conn.close()


def test_pymysql_use_statement() -> None:
    conn = pymysql.connect(autocommit=True, **MYSQL_KW)
    try:
        cur = conn.cursor()
        cur.execute(f"USE {DB}")
        cur.close()
        assert land("pymysql", conn, via="USE") == worker_db()
    finally:
        conn.close()


async def _asyncpg_connect() -> str:
    conn: Any = await asyncpg.connect(database=DB, **PG_KW)
    try:
        return str(await conn.fetchval("SELECT current_database()"))
    finally:
        await conn.close()


async def _asyncpg_dsn() -> str:
    conn: Any = await asyncpg.connect(PG_URI)
    try:
        return str(await conn.fetchval("SELECT current_database()"))
    finally:
        await conn.close()


async def _asyncpg_pool() -> list[str]:
    pool: Any = await asyncpg.create_pool(PG_URI, min_size=2, max_size=2)
    try:
        seen = []
        for _ in range(3):
            async with pool.acquire() as conn:
                seen.append(str(await conn.fetchval("SELECT current_database()")))
        return seen
    finally:
        await pool.close()


def test_asyncpg_connect() -> None:
    db = asyncio.run(_asyncpg_connect())
    record("landed", driver="asyncpg", family="pg", db=db, via="connect")
    assert db == worker_db()


def test_asyncpg_connect_dsn() -> None:
    db = asyncio.run(_asyncpg_dsn())
    record("landed", driver="asyncpg", family="pg", db=db, via="dsn")
    assert db == worker_db()


def test_asyncpg_create_pool() -> None:
    dbs = asyncio.run(_asyncpg_pool())
    for db in dbs:
        record("landed", driver="asyncpg", family="pg", db=db, via="pool")
    assert dbs == [worker_db()] * 3


def test_psycopg_implementation() -> None:
    """Whatever PSYCOPG_IMPL picked (the e2e suite runs this file with `python` too)."""
    impl = psycopg.pq.__impl__
    assert impl == os.environ.get("PSYCOPG_IMPL", impl)
    with psycopg.connect(dbname=DB, autocommit=True, **PG_KW) as conn:
        assert land("psycopg", conn, impl=impl) == worker_db()
    with psycopg.connect(PG_URI, autocommit=True) as conn:
        assert land("psycopg", conn, impl=impl, via="uri") == worker_db()


async def _psycopg_async() -> str:
    conn = await psycopg.AsyncConnection.connect(dbname=DB, autocommit=True, **PG_KW)
    try:
        cur = await conn.execute("SELECT current_database()")
        row = await cur.fetchone()
    finally:
        await conn.close()
    assert row is not None
    return str(row[0])


def test_psycopg_async_implementation() -> None:
    db = asyncio.run(_psycopg_async())
    record("landed", driver="psycopg-async", family="pg", db=db, impl=psycopg.pq.__impl__)
    assert db == worker_db()
