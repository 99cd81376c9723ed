"""Where connects land outside the workers' tests: the xdist controller (it imports the root
conftest too) must use the real names and never touch gw0's database, and a family configured by
a conftest below the root (imported during collection) must be rerouted like a root one."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import MySQLdb
import psycopg
import pytest
from psycopg import sql

from support import VENV_PYTHON, Launcher, drop_everything_named, unique_name

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

HELPERS = """
import json, os
import psycopg2

BASE, OUT = os.environ["DZ_BASE"], os.environ["DZ_OUT"]
KW = dict(host="127.0.0.1", port=5432, user="postgres")

def record(tag, db):
    with open(OUT, "a") as fh:
        worker = os.environ.get("PYTEST_XDIST_WORKER")
        fh.write(json.dumps({"worker": worker, "tag": tag, "db": db}) + "\\n")

def pg_db():
    conn = psycopg2.connect(dbname=BASE, **KW)
    cur = conn.cursor()
    cur.execute("SELECT current_database()")
    name = cur.fetchone()[0]
    conn.close()
    return name
"""

ROOT_CONFTEST = """
from dagz.integ.psycopg2 import PG_CONFIG, create_worker_init
from dzhelp import BASE, KW, pg_db, record

PG_CONFIG.configure(PG_CONFIG.default_rewrite_db_name, PG_CONFIG.default_should_reroute, None,
                    worker_init=create_worker_init([BASE], **KW))
record("conftest", pg_db())
"""

SUB_CONFTEST = """
from dagz.integ.mysqlclient import MYSQL_CONFIG

MYSQL_CONFIG.configure(MYSQL_CONFIG.default_rewrite_db_name, MYSQL_CONFIG.default_should_reroute,
                       None)
"""

ROOT_TEST = """
from dzhelp import pg_db, record

def test_pg():
    record("test_pg", pg_db())
"""

SUB_TEST = """
import os
import MySQLdb
from dzhelp import record

def test_mysql():
    conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", password="",
                           db=os.environ["DZ_BASE"])
    cur = conn.cursor()
    cur.execute("SELECT DATABASE()")
    record("test_mysql", cur.fetchone()[0])
"""


@pytest.fixture
def base() -> Iterator[str]:
    """A base of this run on PostgreSQL, with its worker databases on MariaDB; every database
    of that name (the ones the inner run made included) is dropped afterwards on both servers."""
    name = unique_name("ctl")
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        my = MySQLdb.connect(**MY)
        try:
            for db in (name, f"{name}_jw00", f"{name}_jw01"):
                my.cursor().execute(f"CREATE DATABASE `{db}`")
        finally:
            my.close()
        yield name
    finally:
        drop_everything_named(name)


def test_controller_keeps_real_names_and_sub_conftest_families_reroute(
    launcher: Launcher, base: str, tmp_path: Path
) -> None:
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / "dzhelp.py").write_text(textwrap.dedent(HELPERS))
    (proj / "conftest.py").write_text(textwrap.dedent(ROOT_CONFTEST))
    (proj / "test_root.py").write_text(textwrap.dedent(ROOT_TEST))
    (proj / "sub" / "conftest.py").write_text(textwrap.dedent(SUB_CONFTEST))
    (proj / "sub" / "test_sub.py").write_text(textwrap.dedent(SUB_TEST))
    out = tmp_path / "events.jsonl"
    tmp = tmp_path / "tmp"  # the inner run's TMPDIR: a dagz-run-* folder lands here
    tmp.mkdir()
    env = launcher.env(
        {"DZ_BASE": base, "DZ_OUT": str(out), "PYTHONPATH": str(proj), "TMPDIR": str(tmp)}
    )
    proc = subprocess.run(
        [str(VENV_PYTHON), "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q", str(proj)],
        env=env,
        cwd=proj,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = [json.loads(line) for line in out.read_text().splitlines()]

    def expect(worker: str | None) -> str:
        return base if worker is None else f"{base}_jw{int(worker[2:]):02d}"

    controller = [e for e in events if e["worker"] is None]
    assert controller == [{"worker": None, "tag": "conftest", "db": base}], events
    in_workers = [e for e in events if e["worker"] is not None]
    assert {e["tag"] for e in in_workers} == {"conftest", "test_pg", "test_mysql"}, events
    for e in in_workers:
        assert e["db"] == expect(e["worker"]), e
