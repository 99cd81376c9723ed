"""Issue 12: outside a pytest worker (a child process of a test, with the shim preloaded and the
worker variables inherited), `bypass()` was per thread only: a task holding it across an `await`
let another task's connect on the same loop through un-rerouted, into the base database. Now it
is per asyncio task there too. The child runs two tasks on one loop; the server says where each
connect landed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from plugin_support import SampleDatabases, _pg, new_base_name
from psycopg import sql

from support import VENV_PYTHON, Launcher

CHILD = r"""
import asyncio, json, os, sys
import psycopg
from dagz.integ.psycopg import PG_CONFIG

DB = sys.argv[1]


async def where():
    conn = await psycopg.AsyncConnection.connect(host="127.0.0.1", user="postgres", dbname=DB)
    try:
        return (await (await conn.execute("SELECT current_database()")).fetchone())[0]
    finally:
        await conn.close()


async def main():
    inside = asyncio.Event()
    done = asyncio.Event()
    out = {}

    async def holder():
        with PG_CONFIG.bypass():
            out["bypassed"] = await where()
            inside.set()
            await done.wait()  # holds the bypass across an await

    async def other():
        await inside.wait()
        out["other"] = await where()
        done.set()

    await asyncio.gather(holder(), other())
    out["after"] = await where()
    print(json.dumps(out))


asyncio.run(main())
"""


@pytest.fixture
def dbs() -> Iterator[SampleDatabases]:
    dbs = SampleDatabases(new_base_name())
    try:
        dbs.create()
        with _pg() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(dbs.worker(1)), sql.Identifier(dbs.base)
                )
            )
        yield dbs
    finally:
        dbs.drop_all()


def test_child_bypass_is_per_task(dbs: SampleDatabases, launcher: Launcher) -> None:
    result = launcher.run(
        [str(VENV_PYTHON), "-c", CHILD, dbs.base],
        {"PYTEST_XDIST_WORKER": "gw1", "PYTEST_XDIST_WORKER_COUNT": "2"},
    )
    assert result.rc == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out == {"bypassed": dbs.base, "other": dbs.worker(1), "after": dbs.worker(1)}, out
