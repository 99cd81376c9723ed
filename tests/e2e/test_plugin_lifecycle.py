"""Acceptance: the worker_init/prepare lifecycle, counted by the sample's callbacks.

``worker_init`` runs exactly once per worker process and family; ``prepare`` exactly once per test
per database the test touched (in setup, call or teardown, through any driver), never for a test
that makes no connection, and not for a database a manual-init helper marked — in that test
only: the next test of that worker touching the database is prepared again (and sees it empty).
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
    manual_followups,
    sample_project,
)

FILES = ("test_lifecycle.py", "test_rows_psycopg2.py", "test_rows_mysqlclient.py")


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


def test_worker_init_and_prepare_counts(sample: SampleProject) -> None:
    base = sample.dbs.base
    run = sample.run("--dagz-workers", "2", files=FILES)
    assert_passed(run, at_least=40)
    assert landing_problems(run, base) == [], run.describe()
    assert lifecycle_problems(run, base, ("pg", "mysql")) == [], run.describe()

    # worker_init: one per worker and family, both workers used
    inits = sorted((e["worker"], e["family"]) for e in run.of("worker_init"))
    assert inits == [("gw0", "mysql"), ("gw0", "pg"), ("gw1", "mysql"), ("gw1", "pg")], inits

    # no connection, no callback
    quiet = [t for t in run.outcomes if "test_no_connection" in t]
    assert len(quiet) == 4
    busy = {e["test"] for e in run.of("prepare")} | {e["test"] for e in run.of("worker_init")}
    assert not busy & set(quiet), run.describe()

    # a test connecting in setup, call and teardown through two drivers: one prepare
    around = "test_lifecycle.py::test_setup_call_teardown"
    phases = sorted(e["phase"] for e in run.landed(around))
    assert phases == ["call", "setup", "teardown"], run.describe()
    assert [e["db"] for e in run.of("prepare") if e["test"] == around] == [
        next(e["db"] for e in run.landed(around))
    ]
    # one test, both families: one prepare each
    both = "test_lifecycle.py::test_both_families"
    assert sorted(e["family"] for e in run.of("prepare") if e["test"] == both) == ["mysql", "pg"]

    # manual init: marked in its own test only; the next test of that worker is prepared again
    marks = run.of("manual")
    assert sorted((m["family"], m["helper"]) for m in marks) == [
        ("mysql", "mysql+pymysql"),
        ("mysql", "url"),
        ("pg", "name"),
        ("pg", "postgres"),
        ("pg", "postgresql+psycopg2"),
        ("pg", "url"),
    ], run.describe()
    followups = manual_followups(run, base)
    assert {family for _, family, _, _ in followups} == {"pg", "mysql"}, followups
    assert all(prepared for *_, prepared in followups), followups
