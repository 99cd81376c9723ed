"""Acceptance: ``single_worker_disable`` and ``main_worker_bypass``.

* ``single_worker_disable=True`` with one worker (``pytest --dagz`` with the shim preloaded and
  no ``-n``, also with the xdist plugin disabled, and ``--dagz-workers 1``): nothing is touched —
  every connect and a ``psql`` child land in the base databases, no ``worker_init``/``prepare``
  runs, no per-worker database is created.
* ``main_worker_bypass=True`` with ``--dagz-workers 2``: every ``@pytest.mark.dagz_main_worker``
  test runs on gw0 and sees the base databases; gw0 as a whole uses the original names and runs
  neither callback; tests on gw1 see ``_jw01``.
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

MODE_TESTS = 19


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


@pytest.mark.parametrize(
    ("args", "preload"),
    [
        (("--dagz",), True),
        (("-p", "no:xdist", "--dagz"), True),
        (("--dagz-workers", "1"), False),
    ],
    ids=["dagz-preloaded", "dagz-preloaded-no-xdist", "dagz-workers-1"],
)
def test_single_worker_disable_touches_nothing(
    sample: SampleProject, shim: Path, args: tuple[str, ...], preload: bool
) -> None:
    base = sample.dbs.base
    run = sample.run(
        *args,
        files=["test_modes.py"],
        env={"DZ_SINGLE_WORKER_DISABLE": "1"},
        preload=shim if preload else None,
    )
    assert_passed(run, at_least=MODE_TESTS)
    assert "dagz 0" in run.stdout, run.describe()  # the plugin was active (report header)
    landed = run.landed()
    assert {e["driver"] for e in landed} == {
        "psycopg",
        "psycopg2",
        "mysqlclient",
        "pymysql",
        "psql",
    }
    assert landing_problems(run, base, rerouted=False) == [], run.describe()
    assert run.of("worker_init") == [], run.describe()
    assert run.of("prepare") == [], run.describe()
    assert sample.dbs.pg_databases() == [base]
    assert sample.dbs.mysql_databases() == [base]


@pytest.mark.parametrize("families", ["pg", "mysql"])
def test_main_worker_bypass(sample: SampleProject, families: str) -> None:
    base = sample.dbs.base
    run = sample.run(
        "--dagz-workers",
        "2",
        files=["test_modes.py"],
        env={"DZ_MAIN_WORKER_BYPASS": "1"},
        families=families,
    )
    assert_passed(run, at_least=MODE_TESTS)
    landed = [e for e in run.landed() if not e.get("child")]
    marked = [e for e in landed if e["marked"]]
    assert len({e["test"] for e in marked}) == 6, run.describe()
    assert {e["worker"] for e in marked} == {"gw0"}, run.describe()
    # gw0 sees the base database (marked or not), gw1 its own
    on_gw0 = [e for e in run.landed() if e["worker"] == "gw0"]
    on_gw1 = [e for e in run.landed() if e["worker"] == "gw1"]
    assert on_gw1, f"no test ran on gw1, nothing was rerouted\n{run.describe()}"
    assert {e["db"] for e in on_gw0} == {base}, run.describe()
    assert {e["db"] for e in on_gw1} == {sample.dbs.worker(1)}, run.describe()
    # callbacks: none on gw0, the usual lifecycle on gw1
    assert {e["worker"] for e in run.of("worker_init") + run.of("prepare")} == {"gw1"}
    assert lifecycle_problems(run, base, (families,), workers={"gw1"}) == [], run.describe()
    assert sample.dbs.databases(families) == [base, sample.dbs.worker(1)]
