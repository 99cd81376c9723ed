"""Acceptance: several workers, a configured family, and no shim in the workers: the run stops
before any test runs, with one error that says how to preload the shim (``--dagz-workers`` /
``LD_PRELOAD``) — never a run in which the workers silently share the base databases.

A plain ``pytest -n 2`` of a project whose conftest configures a family (``pytest --dagz -n 2``
preloads the shim into its workers itself: test_newcomer) (issue 4: "a clear stop
... when a family is configured, the run has more than one worker, and the shim is not
preloaded in a worker").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import SampleProject, sample_project


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


def test_run_without_shim_stops(sample: SampleProject) -> None:
    base = sample.dbs.base
    run = sample.run("-n", "2", files=["test_rows_psycopg.py", "test_rows_pymysql.py"])
    output = run.stdout + run.stderr
    assert run.rc not in (0, 1), run.describe()  # not a test outcome: the run itself stopped
    errors = [line for line in output.splitlines() if "dagz:" in line]
    assert len(errors) == 1, run.describe()
    assert "--dagz-workers" in errors[0], run.describe()
    assert "LD_PRELOAD" in errors[0], run.describe()
    # no test ran: nothing logged, nothing reported, nothing written on the servers
    assert run.events == [], run.describe()
    assert run.outcomes == {}, run.describe()
    assert not re.search(r"\d+ (passed|failed)", output), run.describe()
    for family in ("pg", "mysql"):
        assert sample.dbs.databases(family) == [base]
        assert sample.dbs.count(family, base, "items") == 0
