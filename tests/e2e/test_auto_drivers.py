"""Issue 13 acceptance: a suite using psycopg2, psycopg 3 async, asyncpg, ADBC PostgreSQL,
PyMySQL and mysqlclient, with fixed primary keys and no conftest (``auto_project``), passes on 4
dagz workers, and every connection landed in its worker's database — as the server says
(``current_database()`` / ``DATABASE()`` recorded by each test). The same suite on 4 plain xdist
workers collides, so the suite does detect sharing."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import SampleDatabases, child_env, run_process

from support import VENV_PYTHON, unique_name

PROJECT = Path(__file__).resolve().parent / "auto_project"
DRIVERS = ("psycopg2", "psycopg-async", "asyncpg", "adbc", "pymysql", "mysqlclient")


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, SampleDatabases]]:
    dbs = SampleDatabases(unique_name("ad"))
    try:
        dbs.create()
        target = tmp_path / "project"
        shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns("__pycache__"))
        yield target, dbs
    finally:
        dbs.drop_all()


def _run(project: Path, base: str, *args: str) -> tuple[int, str, list[dict[str, str]]]:
    events = project / "events.jsonl"
    events.unlink(missing_ok=True)
    env = child_env({"DZ_DB": base, "DZ_EVENTS": str(events)})
    argv = [str(VENV_PYTHON), "-m", "pytest", "-p", "no:cacheprovider", *args]
    rc, out, err, _ = run_process(argv, env, project)
    landed = [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []
    return rc, out + err, landed


def test_every_driver_lands_in_its_worker_database(
    project: tuple[Path, SampleDatabases],
) -> None:
    path, dbs = project
    rc, output, landed = _run(path, dbs.base, "--dagz-workers", "4")
    assert rc == 0, output[-6000:]
    assert "36 passed" in output, output[-3000:]
    assert Counter(e["driver"] for e in landed) == dict.fromkeys(DRIVERS, 6), landed
    wrong = [e for e in landed if e["db"] != f"{dbs.base}_jw{int(e['worker'][2:]):02}"]
    assert wrong == [], wrong
    for family in ("pg", "mysql"):
        assert dbs.count(family, dbs.base, "items") == 0
    assert "auto mode for MYSQL_CONFIG, PG_CONFIG" in output, output[-3000:]


def test_the_suite_collides_without_dagz(project: tuple[Path, SampleDatabases]) -> None:
    path, dbs = project
    rc, output, landed = _run(path, dbs.base, "-n", "4", "-p", "no:dagz")
    assert rc == 1, output[-6000:]
    assert "failed" in output, output[-3000:]
    assert {e["db"] for e in landed} == {dbs.base}, landed
