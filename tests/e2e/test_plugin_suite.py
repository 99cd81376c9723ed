"""Acceptance: a DB-backed suite that collides under ``pytest -n 4`` passes with dagz.

The sample project (``sample_project/myproject``) has a DAGZ-style root conftest and 48 tests that
put fixed primary keys into the shared ``items`` table and assert exact counts, over psycopg,
psycopg2, mysqlclient and PyMySQL. It must pass three runs in a row with ``--dagz-workers 2`` and
with ``-n 4`` plus ``LD_PRELOAD``; every test must have landed in its worker's database (asked
from the server), and the base databases must be left as they were. The control run, the same
suite on ``-n 4`` with the dagz plugin disabled, fails with collisions — while it passes serially.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import (
    KEEP_ROWS,
    SampleProject,
    SampleRun,
    assert_passed,
    landing_problems,
    lifecycle_problems,
    sample_project,
    worker_number,
)

ROW_FILES = (
    "test_rows_psycopg.py",
    "test_rows_psycopg2.py",
    "test_rows_mysqlclient.py",
    "test_rows_pymysql.py",
)
ROW_TESTS = 48
#: How a row test fails when another one writes the same table: its rows are visible at the
#: start, its keys are taken (psycopg/psycopg2 "duplicate key", MySQL "Duplicate entry"), or the
#: final count is off.
COLLISION = re.compile(
    r"rows of another test are visible|[Dd]uplicate (key|entry)|assert \d+ == \d+"
)


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


def _check_dagz_run(sample: SampleProject, run: SampleRun, workers: int) -> None:
    base = sample.dbs.base
    assert_passed(run, at_least=ROW_TESTS)
    assert len(run.landed()) == ROW_TESTS, run.describe()
    assert landing_problems(run, base) == [], run.describe()
    assert lifecycle_problems(run, base, ("pg", "mysql")) == [], run.describe()
    used = {worker_number(e["worker"]) for e in run.landed()}
    assert used <= set(range(workers)), used
    # server side: nothing landed in the base databases, the per-worker ones exist
    for family in ("pg", "mysql"):
        assert sample.dbs.count(family, base, "items") == 0
        assert sample.dbs.count(family, base, "keep_me") == KEEP_ROWS
        dbs = sample.dbs.databases(family)
        assert {sample.dbs.worker(n) for n in used} <= set(dbs), dbs


@pytest.mark.parametrize(
    ("args", "preload", "workers"),
    [(("--dagz-workers", "2"), False, 2), (("-n", "4"), True, 4)],
    ids=["dagz-workers-2", "n4-ld-preload"],
)
def test_suite_passes_three_runs_in_a_row(
    sample: SampleProject, shim: Path, args: tuple[str, ...], preload: bool, workers: int
) -> None:
    for attempt in range(3):
        run = sample.run(*args, files=ROW_FILES, preload=shim if preload else None)
        try:
            _check_dagz_run(sample, run, workers)
        except AssertionError as exc:
            raise AssertionError(f"run {attempt + 1} of 3: {exc}") from exc


def test_suite_collides_without_dagz(sample: SampleProject) -> None:
    """Control: the suite passes serially and fails on 4 workers sharing the base databases."""
    base = sample.dbs.base
    serial = sample.run("-p", "no:dagz", files=ROW_FILES)
    assert_passed(serial, at_least=ROW_TESTS)
    assert landing_problems(serial, base, rerouted=False) == [], serial.describe()

    parallel = sample.run("-p", "no:dagz", "-n", "4", files=ROW_FILES)
    assert parallel.rc == 1, parallel.describe()
    failed = parallel.by_outcome("failed") + parallel.by_outcome("error")
    assert failed, parallel.describe()
    # the failures are collisions: another test's rows or keys, in the one shared database
    collisions = [o for o in parallel.not_passed() if COLLISION.search(o.message)]
    assert collisions, parallel.describe()
    assert landing_problems(parallel, base, rerouted=False) == [], parallel.describe()
    for family in ("pg", "mysql"):
        assert sample.dbs.databases(family) == [base]


@pytest.mark.parametrize(
    ("args", "preload"),
    [(("--dagz-workers", "2"), False), (("-n", "2"), True)],
    ids=["dagz-workers-2", "n2-ld-preload"],
)
def test_run_leaves_no_temporary_files(
    sample: SampleProject, shim: Path, args: tuple[str, ...], preload: bool
) -> None:
    """A run cleans up after itself: nothing of dagz's is left in its TMPDIR (the controller's
    ``DAGZ_RUN_DIR`` for the main-worker scheduler included)."""
    run = sample.run(*args, files=["test_rows_psycopg.py"], preload=shim if preload else None)
    assert_passed(run, at_least=12)
    tmpdir = Path(run.env["TMPDIR"])
    left = sorted(str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*"))
    assert left == [], left
