"""Issue 13: per-test work follows use, not connects. A configured `prepare` runs before a test's
first statement on each rerouted database, also over a connection that a pool created at import
(SQLAlchemy's default pooled engine) kept from an earlier test — and not for a test that does not
use the database. Before, `prepare` ran at the pool's one connect only (the first test), so the
next test's fixed primary key collided with the row the previous test left.

One dagz worker runs an inline project's tests in file order, for one driver at a time
(psycopg2 and psycopg 3 over libpq; mysqlclient over libmariadb; asyncpg and PyMySQL in Python).
The prepare deletes `items` and counts itself in `notes`: on the server, the worker database's
`notes` rows are the prepares that ran."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import SampleDatabases, run_inline_project, sample_databases

#: The driver SQLAlchemy uses -> the server family. psycopg2 and psycopg 3 (its C implementation)
#: call libpq, mysqlclient libmariadb: the shim's statement hooks check them; asyncpg and PyMySQL
#: speak the protocol in Python: dagz's Python-level hooks check them.
DRIVERS = {
    "psycopg2": "pg",
    "psycopg": "pg",
    "asyncpg": "pg",
    "mysqlclient": "mysql",
    "pymysql": "mysql",
}
#: One driver per server for the failure cases.
C_DRIVERS = ("psycopg2", "mysqlclient")

CONFTEST = """
import json, os
import MySQLdb, psycopg2
from dagz.config import MYSQL_CONFIG, PG_CONFIG

BASE = "{db}"
MODE = os.environ["DZ_MODE"]
PG_KW = dict(host="127.0.0.1", user="postgres")
MY_KW = dict(host="127.0.0.1", user="root")


def begin(family, db):
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
    with open(os.environ["DZ_OUT"], "a") as f:
        f.write(json.dumps({"family": family, "db": db, "test": test}) + "\\n")
    if MODE == "fail" and "test_3" in test:
        raise RuntimeError("the prepare of test 3 broke")


def count_and_clear(conn):
    cur = conn.cursor()
    cur.execute("DELETE FROM items")
    cur.execute("INSERT INTO notes (body) VALUES ('prepared')")
    conn.close()


def pg_prepare(db):
    begin("pg", db)
    if MODE == "truncate":
        PG_CONFIG.truncate(db, **PG_KW)
        return
    conn = psycopg2.connect(dbname=db, **PG_KW)
    conn.autocommit = True
    count_and_clear(conn)


def mysql_prepare(db):
    begin("mysql", db)
    if MODE == "truncate":
        MYSQL_CONFIG.truncate(db, **MY_KW)
        return
    count_and_clear(MySQLdb.connect(db=db, autocommit=True, **MY_KW))


PG_CONFIG.configure(
    PG_CONFIG.default_rewrite_db_name,
    PG_CONFIG.default_should_reroute,
    pg_prepare,
    worker_init=PG_CONFIG.create_worker_init([BASE], **PG_KW),
)
MYSQL_CONFIG.configure(
    MYSQL_CONFIG.default_rewrite_db_name,
    MYSQL_CONFIG.default_should_reroute,
    mysql_prepare,
    worker_init=MYSQL_CONFIG.create_worker_init([BASE], **MY_KW),
)
"""

TESTS = """
import os
import sqlalchemy
from sqlalchemy import text

URLS = {
    "psycopg2": "postgresql+psycopg2://postgres@127.0.0.1/{db}",
    "psycopg": "postgresql+psycopg://postgres@127.0.0.1/{db}",
    "mysqlclient": "mysql+mysqldb://root@127.0.0.1/{db}",
    "pymysql": "mysql+pymysql://root@127.0.0.1/{db}",
}
POOL = None
if os.environ["DZ_DRIVER"] == "asyncpg":  # an asyncpg pool made at import, on one event loop
    import asyncio, asyncpg

    LOOP = asyncio.new_event_loop()
    asyncio.set_event_loop(LOOP)

    async def make_pool():
        url = URLS["psycopg2"].replace("+psycopg2", "")
        return await asyncpg.create_pool(url, min_size=1, max_size=1)

    POOL = LOOP.run_until_complete(make_pool())
else:
    # Created at import: the default QueuePool keeps its connections from test to test.
    ENGINE = sqlalchemy.create_engine(URLS[os.environ["DZ_DRIVER"]])
HELD = []


def insert(key):
    if POOL is not None:
        LOOP.run_until_complete(POOL.execute(f"INSERT INTO items VALUES ({key}, 'fixed key')"))
        return
    with ENGINE.begin() as conn:
        conn.execute(text(f"INSERT INTO items VALUES ({key}, 'fixed key')"))


def test_1_uses_the_database():
    insert(1)


def test_2_does_not_use_it():
    if os.environ["DZ_MODE"] == "truncate":
        # A transaction left open on a pooled connection the test keeps: a row lock stays.
        conn = ENGINE.connect()
        conn.execute(text("INSERT INTO items VALUES (2, 'held')"))
        conn.commit()
        conn.execute(text("UPDATE items SET label = 'held' WHERE id = 2"))
        HELD.append(conn)


def test_3_uses_it_again_over_a_pooled_connection():
    insert(3 if os.environ["DZ_MODE"] == "fail" else 1)


def test_4_and_again():
    for conn in HELD:
        conn.rollback()
        conn.close()
    insert(1)
"""

USED = {
    "test_1_uses_the_database",
    "test_3_uses_it_again_over_a_pooled_connection",
    "test_4_and_again",
}


@pytest.fixture
def dbs() -> Iterator[SampleDatabases]:
    with sample_databases() as databases:
        yield databases


def _run(tmp_path: Path, dbs: SampleDatabases, driver: str, mode: str) -> tuple[int, str, list]:
    files = {
        "conftest.py": CONFTEST.replace("{db}", dbs.base),
        "test_pooled.py": TESTS.replace("{db}", dbs.base),
    }
    env = {"DZ_DRIVER": driver, "DZ_MODE": mode}
    return run_inline_project(tmp_path, files, "-v", "--dagz-workers", "1", env=env)


def _worker_db(dbs: SampleDatabases, events: list[dict[str, str]], output: str) -> str:
    workers = {e["db"] for e in events}
    assert len(workers) == 1, (events, output)  # the one worker database
    worker = workers.pop()
    assert worker.startswith(dbs.base + "_jw"), worker
    return worker


def _line(output: str, test: str) -> str:
    return next((x for x in output.splitlines() if f"::{test} " in x and "%]" in x), "")


@pytest.mark.parametrize("driver", DRIVERS)
def test_prepare_runs_before_each_tests_first_statement_over_a_pool(
    tmp_path: Path, dbs: SampleDatabases, driver: str
) -> None:
    family = DRIVERS[driver]
    rc, output, events = _run(tmp_path, dbs, driver, "count")
    assert rc == 0, output
    worker = _worker_db(dbs, events, output)
    prepared = {e["test"].split("::")[-1] for e in events}
    assert prepared == USED, (events, output)
    assert len(events) == 3, (events, output)
    # Server side: every prepare counted itself in the worker database; the base is untouched.
    assert dbs.count(family, worker, "notes") == 3
    assert dbs.count(family, worker, "items") == 1
    assert dbs.count(family, dbs.base, "items") == 0


@pytest.mark.parametrize("driver", C_DRIVERS)
def test_a_failed_prepare_fails_the_statement_with_its_message(
    tmp_path: Path, dbs: SampleDatabases, driver: str
) -> None:
    family = DRIVERS[driver]
    rc, output, events = _run(tmp_path, dbs, driver, "fail")
    worker = _worker_db(dbs, events, output)
    assert "FAILED test_pooled.py::test_3_uses_it_again_over_a_pooled_connection" in output
    assert "1 failed, 3 passed" in output, output
    # The test reports the prepare's own error; the statement was refused with it.
    assert "RuntimeError: the prepare of test 3 broke" in output, output
    assert re.search(r"(refused|dagz): (PG|MYSQL)_CONFIG prepare\(", output), output
    assert rc == 1, output
    # Server side: test 3's statement never ran on the unprepared database (no key 3, ever).
    assert dbs.count(family, worker, "notes") == 2  # tests 1 and 4
    assert dbs.count(family, worker, "items") == 1


@pytest.mark.parametrize("driver", C_DRIVERS)
def test_a_truncate_blocked_by_the_tests_own_pooled_connection_fails_clearly(
    tmp_path: Path, dbs: SampleDatabases, driver: str
) -> None:
    rc, output, _ = _run(tmp_path, dbs, driver, "truncate")
    assert "FAILED test_pooled.py::test_3_uses_it_again_over_a_pooled_connection" in output
    assert "1 failed, 3 passed" in output, output  # no hang; test 4 ends the transaction
    assert "for a lock: an open transaction holds a lock it needs" in output, output
    assert "a pool keeps from test to test" in output, output
    assert rc == 1, output
