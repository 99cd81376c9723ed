"""Issue 10, "no silent no-ops": what a newcomer sees when dagz runs, or does nothing.

Each test runs the sample project (``sample_project/myproject``) in a subprocess, the way a user
would, and checks the one line dagz prints — and, where a run passes, where its rows landed (the
sample's tests ask the server with ``current_database()`` / ``DATABASE()``).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import (
    CRASH_MARKERS,
    SampleProject,
    assert_passed,
    landing_problems,
    sample_project,
)

from support import VENV_PYTHON

ROWS = ["test_rows_psycopg.py", "test_rows_pymysql.py"]
OFF = "rerouting is OFF: no conftest configured a database family"


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


def _dagz_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "dagz:" in line]


def test_no_family_configured_says_so_at_start_and_in_summary(sample: SampleProject) -> None:
    """With auto mode off (``--dagz-no-auto``), a run where no conftest configured a family
    says at start and at the end that it reroutes nothing."""
    run = sample.run("--dagz-workers", "2", "--dagz-no-auto", files=ROWS, families="")
    lines = run.stdout.splitlines()
    said = [i for i, line in enumerate(lines) if OFF in line]
    assert len(said) == 2, run.describe()
    first_test = next(i for i, line in enumerate(lines) if re.match(r"^\d+ workers? \[", line))
    assert said[0] < first_test, run.describe()  # at start: in the header
    assert "===" in lines[said[1] - 1], run.describe()
    assert "dagz" in lines[said[1] - 1], run.describe()
    assert "PG_CONFIG" in lines[said[0]], run.describe()
    assert "conftest.py" in lines[said[0]], run.describe()


def test_header_speaks_as_xdist_does(sample: SampleProject) -> None:
    run = sample.run("--dagz-workers", "4", files=ROWS)
    assert_passed(run, at_least=24)
    header = next(line for line in run.stdout.splitlines() if line.startswith("dagz "))
    assert "4 workers (gw0 … gw3)" in header, header
    assert "worker 0 of 1" not in header, header
    assert "1 workers" not in header, header


def test_serial_dagz_without_preload_runs_with_the_shim(sample: SampleProject) -> None:
    """``pytest --dagz`` with no LD_PRELOAD: the run starts again with the shim preloaded,
    reroutes to worker 0's databases and runs prepare — not a silent run on the base."""
    run = sample.run("--dagz", files=ROWS)
    assert "LD_PRELOAD" not in run.env, run.describe()
    assert_passed(run, at_least=24)
    landed = run.landed()
    assert len(landed) == 24, run.describe()
    assert {e["db"] for e in landed} == {f"{sample.dbs.base}_jw00"}, run.describe()
    assert landing_problems(run, sample.dbs.base) == [], run.describe()
    assert run.of("prepare"), run.describe()
    for family in ("pg", "mysql"):
        assert sample.dbs.count(family, sample.dbs.base, "items") == 0


def test_dagz_with_n_preloads_its_workers(sample: SampleProject) -> None:
    """``pytest --dagz -n 2`` (dagz asked for, no LD_PRELOAD): the workers get the shim."""
    run = sample.run("--dagz", "-n", "2", files=ROWS)
    assert_passed(run, at_least=24)
    assert len(run.landed()) == 24, run.describe()
    assert landing_problems(run, sample.dbs.base) == [], run.describe()
    for family in ("pg", "mysql"):
        assert sample.dbs.count(family, sample.dbs.base, "items") == 0


def test_broken_policy_is_one_line_before_any_worker(sample: SampleProject, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[pg]\ntemplate = "{db}_x"\n')
    run = sample.run("--dagz-workers", "4", files=ROWS, env={"DAGZ_POLICY": str(policy)})
    output = run.stdout + run.stderr
    assert run.rc == 4, run.describe()
    errors = _dagz_lines(output)
    assert len(errors) == 1, run.describe()
    assert str(policy) in errors[0], run.describe()
    assert "line 1" in errors[0], run.describe()
    assert not CRASH_MARKERS.search(output), run.describe()
    assert "Traceback" not in output, run.describe()
    assert len(output.splitlines()) <= 5, run.describe()
    assert run.events == [], run.describe()


def test_conftest_below_root_without_shim_stops_with_one_line(
    sample: SampleProject, tmp_path: Path
) -> None:
    """A family configured by a conftest the controller never imports (below the root), plain
    ``-n 2``: the workers find it at collection; the run ends with the error once, no
    INTERNALERROR, no test run."""
    project = tmp_path / "below"
    (project / "pkg").mkdir(parents=True)
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "pkg" / "conftest.py").write_text(
        "from dagz.integ.psycopg import PG_CONFIG\n"
        "PG_CONFIG.configure(PG_CONFIG.default_rewrite_db_name,"
        " PG_CONFIG.default_should_reroute, None)\n"
    )
    (project / "pkg" / "test_a.py").write_text("def test_a():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTEST_XDIST_WORKER")}
    proc = subprocess.run(
        [str(VENV_PYTHON), "-m", "pytest", "-p", "no:cacheprovider", "-n", "2"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 4, output
    errors = [line for line in output.splitlines() if "libdagz.so is not preloaded" in line]
    assert len(errors) == 1, output
    assert "--dagz-workers 2" in errors[0], output
    assert "LD_PRELOAD" in errors[0], output
    assert "INTERNALERROR" not in output, output
    assert " passed" not in output, output


def test_db_list_engine_not_asked_for_is_a_warning(tmp_path: Path) -> None:
    """With no MySQL driver importable, ``dagz db list`` warns and lists PostgreSQL (exit 0);
    ``--engine mysql`` is an error (exit 1). The drivers are hidden by a path entry whose
    modules fail to import, as on a machine where they are not installed."""
    hide = tmp_path / "hide"
    hide.mkdir()
    for mod in ("MySQLdb", "pymysql"):
        (hide / f"{mod}.py").write_text("raise ImportError('not installed here')\n")
    env = {**os.environ, "PYTHONPATH": str(hide)}
    cmd = [str(VENV_PYTHON), "-m", "dagz.cli", "db", "list"]
    both = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert both.returncode == 0, both.stderr
    assert both.stderr.startswith("dagz: warning: mysql skipped"), both.stderr
    assert len(both.stderr.splitlines()) == 1, both.stderr
    asked = subprocess.run(
        [*cmd, "--engine", "mysql"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert asked.returncode == 1, asked.stderr
    assert asked.stderr.startswith("dagz: error: mysql:"), asked.stderr
