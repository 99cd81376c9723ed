"""Issue 12: a `worker_init` or `prepare` that connects from a helper thread (a thread it joins,
a thread pool it waits on) deadlocked: the helper's connect waited for the lifecycle step that
was running the callback. Now no lock is held while user code runs, and threads a callback
starts are the callback's own (their connects are not rerouted, as the callback's are not).

A project written into a temporary directory runs under ``--dagz-workers 2``; each test asks the
server where it landed, and the callbacks record where their helper threads landed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import SampleDatabases, run_inline_project, sample_databases

CONFTEST = """
import json, os, threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
from dagz.integ.psycopg import PG_CONFIG, create_worker_init

DB = os.environ["DZ_DB"]
KW = {"host": "127.0.0.1", "user": "postgres", "autocommit": True}
OUT = os.environ["DZ_OUT"]
clone = create_worker_init([DB], host="127.0.0.1", user="postgres")


def where(dbname):
    with psycopg.connect(dbname=dbname, **KW) as conn:
        return conn.execute("SELECT current_database()").fetchone()[0]


def record(kind, landed):
    with open(OUT, "a") as fh:
        fh.write(json.dumps({"kind": kind, "db": landed}) + "\\n")


def worker_init(num):
    with ThreadPoolExecutor(2) as pool:
        record("worker_init/pool", pool.submit(where, DB).result(timeout=20))
    clone(num)


def prepare(db):
    box = {}
    thread = threading.Thread(target=lambda: box.update(db=where(DB)))
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "prepare's helper thread hung"
    record("prepare/thread", box["db"])
    PG_CONFIG.truncate(db, host="127.0.0.1", user="postgres")


PG_CONFIG.configure(
    PG_CONFIG.default_rewrite_db_name,
    PG_CONFIG.default_should_reroute,
    prepare,
    worker_init=worker_init,
)
"""

TESTS = """
import json, os, pytest, psycopg

DB = os.environ["DZ_DB"]


@pytest.mark.parametrize("n", range(6))
def test_lands_in_its_worker_database(n):
    with psycopg.connect(dbname=DB, host="127.0.0.1", user="postgres", autocommit=True) as c:
        landed = c.execute("SELECT current_database()").fetchone()[0]
        c.execute("INSERT INTO items (id, label) VALUES (1, %s)", (str(n),))
    with open(os.environ["DZ_OUT"], "a") as fh:
        fh.write(json.dumps({"kind": "test", "db": landed,
                             "worker": os.environ["PYTEST_XDIST_WORKER"]}) + "\\n")
"""


@pytest.fixture
def dbs() -> Iterator[SampleDatabases]:
    with sample_databases() as dbs:
        yield dbs


def test_worker_init_and_prepare_connect_from_helper_threads(
    dbs: SampleDatabases, tmp_path: Path
) -> None:
    rc, output, events = run_inline_project(
        tmp_path,
        {"conftest.py": CONFTEST, "test_threads.py": TESTS},
        "--dagz-workers",
        "2",
        env={"DZ_DB": dbs.base},
        timeout=90,
    )
    assert rc == 0, output
    tests = [e for e in events if e["kind"] == "test"]
    assert len(tests) == 6, events
    for e in tests:  # server side: each test in its worker's database
        assert e["db"] == dbs.worker(int(e["worker"][2:])), e
    helpers = [e for e in events if e["kind"] != "test"]
    assert {e["kind"] for e in helpers} == {"worker_init/pool", "prepare/thread"}, events
    # the callbacks' helper threads are the callbacks' own: not rerouted
    assert {e["db"] for e in helpers} == {dbs.base}, events
    assert dbs.count("pg", dbs.base, "items") == 0
