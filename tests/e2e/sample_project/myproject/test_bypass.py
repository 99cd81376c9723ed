"""``PG_CONFIG.bypass()`` is per thread and per asyncio task.

Each check is arranged so that the two sides really overlap: the side outside ``bypass()``
connects only while the other side is inside it (a barrier for threads, events for tasks).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import asyncpg
import psycopg
import pytest
from dagz.integ.psycopg import PG_CONFIG
from dzsample import DB, PG_KW, connect, land, record, worker_db

WAIT_S = 30.0


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_threads_one_inside_bypass(driver: str) -> None:
    barrier = threading.Barrier(2, timeout=WAIT_S)
    outside_connected = threading.Event()
    seen: dict[str, str] = {}
    errors: list[BaseException] = []

    def inside() -> None:
        try:
            with PG_CONFIG.bypass():
                barrier.wait()  # the other thread connects only once this one is inside
                conn = connect(driver)
                seen["inside"] = land(driver, conn, bypassed=True, side="inside")
                conn.close()
                # stay inside until the other thread has connected
                assert outside_connected.wait(WAIT_S)
        except BaseException as exc:
            errors.append(exc)

    def outside() -> None:
        try:
            barrier.wait()
            conn = connect(driver)
            seen["outside"] = land(driver, conn, side="outside")
            conn.close()
        except BaseException as exc:
            errors.append(exc)
        finally:
            outside_connected.set()

    threads = [threading.Thread(target=inside), threading.Thread(target=outside)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert not errors, errors
    assert seen == {"inside": DB, "outside": worker_db()}
    # and the main thread, which never entered bypass()
    conn = connect(driver)
    try:
        assert land(driver, conn, side="main") == worker_db()
    finally:
        conn.close()


async def _psycopg_db(tag: str, *, bypassed: bool) -> str:
    conn = await psycopg.AsyncConnection.connect(dbname=DB, autocommit=True, **PG_KW)
    try:
        cur = await conn.execute("SELECT current_database()")
        row = await cur.fetchone()
    finally:
        await conn.close()
    assert row is not None
    db = str(row[0])
    record("landed", driver="psycopg-async", family="pg", db=db, bypassed=bypassed, side=tag)
    return db


async def _interleaved_psycopg() -> dict[str, str]:
    seen: dict[str, str] = {}
    a_inside = asyncio.Event()
    b_first = asyncio.Event()
    a_connected = asyncio.Event()
    b_second = asyncio.Event()

    async def task_a() -> None:
        with PG_CONFIG.bypass():
            a_inside.set()
            await b_first.wait()  # B connected while A sat inside bypass()
            seen["a_inside"] = await _psycopg_db("a_inside", bypassed=True)
            a_connected.set()
            await b_second.wait()  # B connects again, A still inside
        seen["a_after"] = await _psycopg_db("a_after", bypassed=False)

    async def task_b() -> None:
        await a_inside.wait()
        seen["b_first"] = await _psycopg_db("b_first", bypassed=False)
        b_first.set()
        await a_connected.wait()
        seen["b_second"] = await _psycopg_db("b_second", bypassed=False)
        b_second.set()

    await asyncio.wait_for(asyncio.gather(task_a(), task_b()), WAIT_S)
    return seen


def test_interleaved_tasks_psycopg_async() -> None:
    seen = asyncio.run(_interleaved_psycopg())
    jw = worker_db()
    assert seen == {"a_inside": DB, "a_after": jw, "b_first": jw, "b_second": jw}


async def _asyncpg_db(tag: str, *, bypassed: bool) -> str:
    conn: Any = await asyncpg.connect(database=DB, **PG_KW)
    try:
        db = str(await conn.fetchval("SELECT current_database()"))
    finally:
        await conn.close()
    record("landed", driver="asyncpg", family="pg", db=db, bypassed=bypassed, side=tag)
    return db


async def _interleaved_asyncpg() -> dict[str, str]:
    seen: dict[str, str] = {}
    a_inside = asyncio.Event()
    b_done = asyncio.Event()

    async def task_a() -> None:
        with PG_CONFIG.bypass():
            a_inside.set()
            # both connects in flight at once: A's inside bypass(), B's outside
            seen["a_inside"], _ = await asyncio.gather(
                _asyncpg_db("a_inside", bypassed=True), b_done.wait()
            )

    async def task_b() -> None:
        await a_inside.wait()
        try:
            seen["b"] = await _asyncpg_db("b", bypassed=False)
        finally:
            b_done.set()

    await asyncio.wait_for(asyncio.gather(task_a(), task_b()), WAIT_S)
    return seen


def test_interleaved_tasks_asyncpg() -> None:
    seen = asyncio.run(_interleaved_asyncpg())
    assert seen == {"a_inside": DB, "b": worker_db()}


def test_nested_bypass() -> None:
    with PG_CONFIG.bypass():
        with PG_CONFIG.bypass():
            conn = connect("psycopg2")
            inner = land("psycopg2", conn, bypassed=True, side="inner")
            conn.close()
        conn = connect("psycopg")
        outer = land("psycopg", conn, bypassed=True, side="outer")
        conn.close()
    conn = connect("psycopg")
    after = land("psycopg", conn, side="after")
    conn.close()
    assert (inner, outer, after) == (DB, DB, worker_db())
