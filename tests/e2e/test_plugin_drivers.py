"""Acceptance: drivers that speak the protocol in Python, hooked by dagz from Python, land in the
per-worker database: PyMySQL (``connect``, ``db=``, ``select_db``, ``USE``), asyncpg
(``connect``, a DSN, ``create_pool``) and psycopg with ``PSYCOPG_IMPL=python`` (sync and async).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import (
    SampleProject,
    assert_passed,
    landing_problems,
    lifecycle_problems,
    sample_project,
)

DRIVER_TESTS = 8


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


@pytest.mark.parametrize("impl", ["default", "python"], ids=["psycopg-binary", "psycopg-python"])
def test_python_level_drivers_land_in_worker_db(sample: SampleProject, impl: str) -> None:
    base = sample.dbs.base
    env = {} if impl == "default" else {"PSYCOPG_IMPL": impl}
    run = sample.run("--dagz-workers", "2", files=["test_drivers.py"], env=env)
    assert_passed(run, at_least=DRIVER_TESTS)
    assert landing_problems(run, base) == [], run.describe()
    assert lifecycle_problems(run, base, ("pg", "mysql")) == [], run.describe()
    seen = {(e["driver"], e.get("via", "")) for e in run.landed()}
    assert {
        ("pymysql", ""),
        ("pymysql", "db="),
        ("pymysql", "select_db"),
        ("pymysql", "USE"),
        ("asyncpg", "connect"),
        ("asyncpg", "dsn"),
        ("asyncpg", "pool"),
        ("psycopg", ""),
        ("psycopg", "uri"),
        ("psycopg-async", ""),
    } <= seen, seen
    if impl == "python":
        impls = {e["impl"] for e in run.landed() if "impl" in e}
        assert impls == {"python"}, run.describe()
