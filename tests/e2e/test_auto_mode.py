"""Issue 13, auto mode: with dagz active and no conftest configuring a family, every worker gets
its own copy of each database it connects to, made on demand from the base by the first connect
(with that connect's own settings), kept across runs like any worker database.

The sample project (``sample_project/myproject``) runs in a subprocess with ``DZ_FAMILIES``
naming the families its conftest configures (none, or one); its tests ask the server where they
landed (``current_database()`` / ``DATABASE()``), and the servers are asked what exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import (
    KEEP_ROWS,
    SampleProject,
    assert_passed,
    landing_problems,
    sample_project,
)

from support import RUN_PREFIX

ROWS = ["test_rows_psycopg.py", "test_rows_pymysql.py"]
MYSQL_ROWS = ["test_rows_mysqlclient.py", "test_rows_pymysql.py"]
OFF = "rerouting is OFF: no conftest configured a database family"


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


def _header(run_stdout: str) -> str:
    return next(line for line in run_stdout.splitlines() if line.startswith("dagz "))


def test_no_conftest_each_worker_gets_its_own_copy(sample: SampleProject) -> None:
    run = sample.run("--dagz-workers", "2", files=ROWS, families="")
    assert_passed(run, at_least=24)
    header = _header(run.stdout)
    assert "PG_CONFIG (auto" in header, run.describe()
    assert "MYSQL_CONFIG (auto" in header, run.describe()
    assert OFF not in run.stdout, run.describe()
    landed = run.landed()
    assert len(landed) == 24, run.describe()
    assert landing_problems(run, sample.dbs.base) == [], run.describe()
    assert run.of("prepare") == [], run.describe()
    assert run.of("worker_init") == [], run.describe()
    workers = {e["worker"] for e in landed}
    for family in ("pg", "mysql"):
        made = set(sample.dbs.databases(family)) - {sample.dbs.base}
        assert made == {f"{sample.dbs.base}_jw{int(w[2:]):02}" for w in workers}, made
        for db in made:  # a copy of the base (its seed rows), not an empty database
            assert sample.dbs.count(family, db, "keep_me") == KEEP_ROWS, (family, db)
        assert sample.dbs.count(family, sample.dbs.base, "items") == 0
    assert "auto mode" in run.stdout, run.describe()
    assert "received" not in run.stdout, run.describe()  # no unseen session reported


UNSEEN_TEST = """
import os, subprocess

import psycopg

def test_rerouted_and_one_child_dagz_cannot_see():
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="{base}") as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] != "{base}"
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    out = subprocess.run(
        ["psql", "-X", "-w", "-At", "-h", "127.0.0.1", "-U", "postgres", "-d", "{base}",
         "-c", "SELECT current_database()"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out == "{base}"  # the child without the preload reached the base itself
"""


def test_a_connection_dagz_cannot_see_is_reported(sample: SampleProject) -> None:
    (sample.dir / "test_unseen.py").write_text(UNSEEN_TEST.replace("{base}", sample.dbs.base))
    run = sample.run("--dagz-workers", "2", files=["test_unseen.py"], families="")
    assert_passed(run, at_least=1)
    warnings = [x for x in run.stdout.splitlines() if "dagz: warning: PG_CONFIG" in x]
    assert len(warnings) == 1, run.describe()
    assert repr(sample.dbs.base) in warnings[0], run.describe()
    assert "received 1 session(s)" in warnings[0], run.describe()


def test_second_run_keeps_the_worker_databases(sample: SampleProject) -> None:
    first = sample.run("--dagz-workers", "2", files=ROWS, families="")
    assert_passed(first, at_least=24)
    second = sample.run("--dagz-workers", "2", files=ROWS, families="")
    assert_passed(second, at_least=24)
    assert landing_problems(second, sample.dbs.base) == [], second.describe()
    assert re.search(r"_jw0\d kept \(fingerprint", second.stdout), second.describe()


def test_no_auto_turns_it_off(sample: SampleProject) -> None:
    run = sample.run(
        "--dagz-workers", "2", "--dagz-no-auto", "-k", "rows[0]", files=ROWS, families=""
    )
    assert OFF in run.stdout, run.describe()
    landed = run.landed()
    assert landed, run.describe()
    assert landing_problems(run, sample.dbs.base, rerouted=False) == [], run.describe()
    assert sample.dbs.databases("pg") == [sample.dbs.base], run.describe()


def test_a_configured_family_keeps_its_semantics_the_other_runs_auto(
    sample: SampleProject,
) -> None:
    run = sample.run("--dagz-workers", "2", files=ROWS, families="pg")
    assert_passed(run, at_least=24)
    assert landing_problems(run, sample.dbs.base) == [], run.describe()
    prepared = {e["family"] for e in run.of("prepare")}
    assert prepared == {"pg"}, run.describe()  # DAGZ semantics for pg only
    assert {e["family"] for e in run.of("worker_init")} == {"pg"}, run.describe()
    header = _header(run.stdout)
    assert "PG_CONFIG (conftest)" in header, header
    assert "MYSQL_CONFIG (auto" in header, header


def test_serial_run_with_preload_uses_worker_0(sample: SampleProject, shim: Path) -> None:
    run = sample.run(files=MYSQL_ROWS, families="", preload=shim)
    assert_passed(run, at_least=24)
    assert {e["db"] for e in run.landed()} == {f"{sample.dbs.base}_jw00"}, run.describe()


MISSING_TEST = """
import psycopg, pymysql, pytest

def test_pg_missing():
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(host="127.0.0.1", user="postgres", dbname="{missing}")
    assert "dagz:" in str(info.value) and "{missing}" in str(info.value), str(info.value)
    assert "does not exist" in str(info.value), str(info.value)

def test_mysql_missing():
    with pytest.raises(Exception) as info:  # PyMySQL is hooked from Python: DagzError
        pymysql.connect(host="127.0.0.1", user="root", password="", database="{missing}")
    assert "dagz:" in str(info.value) and "{missing}" in str(info.value), str(info.value)

def test_django_worker_name_left_alone():
    # pytest-django's per-worker test database: not rerouted, so the server's own error
    with pytest.raises(psycopg.OperationalError) as info:
        psycopg.connect(host="127.0.0.1", user="postgres", dbname="{django}")
    assert "dagz:" not in str(info.value), str(info.value)
    assert 'database "{django}" does not exist' in str(info.value), str(info.value)
"""


def test_missing_base_is_an_error_naming_it(sample: SampleProject) -> None:
    missing = f"{RUN_PREFIX}_nobase"
    django = f"test_{RUN_PREFIX}_x_gw1"
    (sample.dir / "test_missing.py").write_text(
        MISSING_TEST.replace("{missing}", missing).replace("{django}", django)
    )
    run = sample.run("--dagz-workers", "2", files=["test_missing.py"], families="")
    assert_passed(run, at_least=3)
    for family in ("pg", "mysql"):
        left = [db for db in sample.dbs.databases(family) if db.startswith(missing)]
        assert left == [], (family, left)
    assert f"{django}_jw" not in run.stdout + run.stderr, run.describe()
