"""Issue 12: asyncpg, PyMySQL and psycopg's pure-Python implementation were rerouted only when the
conftest imported `dagz.integ.asyncpg` / `.pymysql` / `.psycopg`. Configuring a family now hooks
every installed driver of it. Here the conftest imports only `dagz.integ.psycopg2` and
`dagz.integ.mysqlclient` (the C drivers' modules, which install no Python hook), and the tests
use asyncpg, PyMySQL and psycopg with PSYCOPG_IMPL=python — each asks the server where it landed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import SampleDatabases, run_inline_project, sample_databases

CONFTEST = """
import os
from dagz.integ.psycopg2 import PG_CONFIG
from dagz.integ.mysqlclient import MYSQL_CONFIG

DB = os.environ["DZ_DB"]
for cfg, user in ((PG_CONFIG, "postgres"), (MYSQL_CONFIG, "root")):
    cfg.configure(
        cfg.default_rewrite_db_name,
        cfg.default_should_reroute,
        None,
        worker_init=cfg.create_worker_init([DB], host="127.0.0.1", user=user),
    )
"""

TESTS = """
import asyncio, json, os
import asyncpg, psycopg, pymysql

DB = os.environ["DZ_DB"]


def record(driver, landed):
    with open(os.environ["DZ_OUT"], "a") as fh:
        fh.write(json.dumps({"driver": driver, "db": landed,
                             "worker": os.environ["PYTEST_XDIST_WORKER"]}) + "\\n")


def test_asyncpg():
    async def main():
        conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database=DB)
        try:
            return await conn.fetchval("SELECT current_database()")
        finally:
            await conn.close()
    record("asyncpg", asyncio.run(main()))


def test_pymysql():
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database=DB)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            record("pymysql", cur.fetchone()[0])
    finally:
        conn.close()


def test_psycopg_python():
    assert psycopg.pq.__impl__ == "python"
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=DB) as conn:
        record("psycopg-python", conn.execute("SELECT current_database()").fetchone()[0])
"""


@pytest.fixture
def dbs() -> Iterator[SampleDatabases]:
    with sample_databases() as dbs:
        yield dbs


def test_configuring_a_family_hooks_all_its_python_drivers(
    dbs: SampleDatabases, tmp_path: Path
) -> None:
    rc, output, events = run_inline_project(
        tmp_path,
        {"conftest.py": CONFTEST, "test_drivers.py": TESTS},
        "--dagz-workers",
        "2",
        env={"DZ_DB": dbs.base, "PSYCOPG_IMPL": "python"},
        timeout=120,
    )
    assert rc == 0, output
    assert sorted(e["driver"] for e in events) == ["asyncpg", "psycopg-python", "pymysql"]
    for e in events:
        assert e["db"] == dbs.worker(int(e["worker"][2:])), e
