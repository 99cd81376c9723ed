"""Acceptance: ``CONFIG.truncate`` refuses a database that is not a per-worker database of the
current worker (the base database, another worker's) with a ``dagz:`` error and leaves its rows
alone; through ``PG_CONFIG`` it empties this worker's database and restarts its sequences.
(The 50-table truncate lives in test_dbutil.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import (
    KEEP_ROWS,
    SampleProject,
    assert_passed,
    landing_problems,
    lifecycle_problems,
    sample_project,
)


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


def test_truncate_refuses_base_and_empties_own(sample: SampleProject) -> None:
    base = sample.dbs.base
    run = sample.run("--dagz-workers", "2", files=["test_truncate.py"])
    assert_passed(run, at_least=5)
    assert landing_problems(run, base) == [], run.describe()
    assert lifecycle_problems(run, base, ("pg", "mysql")) == [], run.describe()
    refusals = [t for t in run.outcomes if "test_truncate_refuses" in t]
    assert len(refusals) == 4, run.describe()
    # server side: the base databases kept every row
    for family in ("pg", "mysql"):
        assert sample.dbs.count(family, base, "keep_me") == KEEP_ROWS
    # and the refusals never created or touched another worker's database
    assert all(db.endswith(("_jw00", "_jw01")) or db == base for db in sample.dbs.pg_databases())
