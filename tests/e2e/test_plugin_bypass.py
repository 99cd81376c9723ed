"""Acceptance: ``bypass()`` is per thread and per asyncio task.

Threads: one thread inside ``PG_CONFIG.bypass()`` lands in the base database while another,
connecting at the same time outside it, lands in the worker's ``_jwNN`` database (psycopg and
psycopg2). Tasks: two interleaved tasks on one loop, one inside ``bypass()`` (psycopg
``AsyncConnection``, and asyncpg), each land where they should. Connects inside ``bypass()`` run
no ``prepare``/``worker_init``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import (
    SampleProject,
    SampleRun,
    assert_passed,
    landing_problems,
    lifecycle_problems,
    sample_project,
)


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


def _sides(run: SampleRun, test: str) -> dict[str, str]:
    return {e["side"]: e["db"] for e in run.landed(test)}


def test_bypass_threads_and_tasks(sample: SampleProject) -> None:
    base = sample.dbs.base
    run = sample.run("--dagz-workers", "2", files=["test_bypass.py"], families="pg")
    assert_passed(run, at_least=5)
    assert landing_problems(run, base) == [], run.describe()
    assert lifecycle_problems(run, base, ("pg",)) == [], run.describe()

    def jw(test: str) -> str:
        workers = {e["worker"] for e in run.landed(test)}
        assert len(workers) == 1, workers
        return sample.dbs.worker(int(workers.pop()[2:]))

    for driver in ("psycopg", "psycopg2"):
        test = f"test_bypass.py::test_threads_one_inside_bypass[{driver}]"
        assert _sides(run, test) == {"inside": base, "outside": jw(test), "main": jw(test)}
    test = "test_bypass.py::test_interleaved_tasks_psycopg_async"
    assert _sides(run, test) == {
        "a_inside": base,
        "b_first": jw(test),
        "b_second": jw(test),
        "a_after": jw(test),
    }
    test = "test_bypass.py::test_interleaved_tasks_asyncpg"
    assert _sides(run, test) == {"a_inside": base, "b": jw(test)}
    test = "test_bypass.py::test_nested_bypass"
    assert _sides(run, test) == {"inner": base, "outer": base, "after": jw(test)}
    # the bypassed connects were not prepared: only the per-worker databases were
    assert {e["db"] for e in run.of("prepare")} <= {sample.dbs.worker(0), sample.dbs.worker(1)}


def test_bypassed_connects_run_no_callbacks(sample: SampleProject) -> None:
    """A worker whose only connects are made inside ``bypass()`` runs neither ``worker_init`` nor
    ``prepare`` and creates no per-worker database (one worker, so nothing else connects)."""
    base = sample.dbs.base
    run = sample.run("--dagz-workers", "1", "-k", "refuses", files=["test_truncate.py"])
    assert_passed(run, at_least=4)
    landed = run.landed()
    assert landed, run.describe()
    assert all(e["bypassed"] and e["db"] == base for e in landed), run.describe()
    assert run.of("worker_init") == [], run.describe()
    assert run.of("prepare") == [], run.describe()
    for family in ("pg", "mysql"):
        assert sample.dbs.databases(family) == [base]
