"""Issue 13: per-test work follows use, not connects. A configured `prepare` runs before a test's
first statement on each rerouted database, also over a connection that a pool created at import
(SQLAlchemy's default pooled engine) kept from an earlier test — and not for a test that does not
use the database. Before, `prepare` ran at the pool's one connect only (the first test), so the
next test's fixed primary key collided with the row the previous test left.

One dagz worker runs the tests in file order; the prepare deletes `items` and counts itself in
`notes` (server side: the worker database's `notes` rows are the prepares that ran)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import SampleDatabases, new_base_name, run_inline_project

CONFTEST = """
import json, os
import MySQLdb, psycopg2
from dagz.config import MYSQL_CONFIG, PG_CONFIG

BASE = "{db}"


def record(family, db):
    with open(os.environ["DZ_OUT"], "a") as f:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0]
        f.write(json.dumps({"family": family, "db": db, "test": test}) + "\\n")


def pg_prepare(db):
    record("pg", db)
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=db)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SET lock_timeout = '5s'")
    cur.execute("DELETE FROM items")
    cur.execute("INSERT INTO notes (body) VALUES ('prepared')")
    conn.close()


def mysql_prepare(db):
    record("mysql", db)
    conn = MySQLdb.connect(host="127.0.0.1", user="root", passwd="", db=db, autocommit=True)
    cur = conn.cursor()
    cur.execute("SET SESSION innodb_lock_wait_timeout = 5")
    cur.execute("DELETE FROM items")
    cur.execute("INSERT INTO notes (body) VALUES ('prepared')")
    conn.close()


PG_CONFIG.configure(
    PG_CONFIG.default_rewrite_db_name,
    PG_CONFIG.default_should_reroute,
    pg_prepare,
    worker_init=PG_CONFIG.create_worker_init([BASE], host="127.0.0.1", user="postgres"),
)
MYSQL_CONFIG.configure(
    MYSQL_CONFIG.default_rewrite_db_name,
    MYSQL_CONFIG.default_should_reroute,
    mysql_prepare,
    worker_init=MYSQL_CONFIG.create_worker_init([BASE], host="127.0.0.1", user="root"),
)
"""

TESTS = """
import sqlalchemy
from sqlalchemy import text

BASE = "{db}"
# Created at import: the default QueuePool keeps one connection per engine from test to test.
ENGINES = [
    sqlalchemy.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1/{{BASE}}"),
    sqlalchemy.create_engine(f"mysql+mysqldb://root@127.0.0.1/{{BASE}}"),
]


def insert_fixed_key():
    for engine in ENGINES:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO items VALUES (1, 'fixed key')"))


def test_1_uses_the_databases():
    insert_fixed_key()


def test_2_does_not_use_them():
    pass


def test_3_uses_them_again_over_pooled_connections():
    insert_fixed_key()


def test_4_and_again():
    insert_fixed_key()
"""


@pytest.fixture
def dbs() -> Iterator[SampleDatabases]:
    databases = SampleDatabases(new_base_name())
    try:
        databases.create()
        yield databases
    finally:
        databases.drop_all()


def test_prepare_runs_before_each_tests_first_statement_over_a_pool(
    tmp_path: Path, dbs: SampleDatabases
) -> None:
    files = {
        "conftest.py": CONFTEST.replace("{db}", dbs.base),
        "test_pooled.py": TESTS.replace("{db}", dbs.base).replace("{{BASE}}", "{BASE}"),
    }
    rc, output, events = run_inline_project(tmp_path, files, "-v", "--dagz-workers", "1")
    assert rc == 0, output
    workers = {e["db"] for e in events}
    assert len(workers) == 1, (events, output)  # the one worker database, on both servers
    worker = workers.pop()
    assert worker.startswith(dbs.base + "_jw"), worker
    prepared = {(e["family"], e["test"].split("::")[-1]) for e in events}
    used = {
        "test_1_uses_the_databases",
        "test_3_uses_them_again_over_pooled_connections",
        "test_4_and_again",
    }
    assert prepared == {(f, t) for f in ("pg", "mysql") for t in used}, (events, output)
    # Server side: every prepare counted itself in the worker database; the base is untouched.
    families = ("pg", "mysql")
    counts = {f: (dbs.count(f, worker, "notes"), dbs.count(f, worker, "items")) for f in families}
    assert counts == {"pg": (3, 1), "mysql": (3, 1)}, (counts, output)
    assert {f: dbs.count(f, dbs.base, "items") for f in families} == {"pg": 0, "mysql": 0}
