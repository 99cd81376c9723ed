"""The worker number is read at connect time, not at load time (pytest-xdist sets it late)."""

from __future__ import annotations

from pathlib import Path

from support import (
    APP_JW03,
    APP_JW05,
    CONNINFO_APP,
    PSQL_QUERY,
    URI_APP,
    Launcher,
    assert_all_landed,
    assert_landed,
)

SET_LATE = f"""
import psycopg, psycopg2
assert "PYTEST_XDIST_WORKER" not in os.environ and "DAGZ_WORKER" not in os.environ
os.environ["PYTEST_XDIST_WORKER"] = "gw5"
os.environ["PYTEST_XDIST_WORKER_COUNT"] = "8"
show("psycopg2", psycopg2.connect({CONNINFO_APP!r}))
show("psycopg", psycopg.connect({CONNINFO_APP!r}))
"""


def test_xdist_worker_set_after_start(launcher: Launcher, venv_python: Path) -> None:
    """A process started without any worker variable sets PYTEST_XDIST_WORKER=gw5, then connects."""
    result = launcher.python(venv_python, SET_LATE)
    assert_all_landed(result, {"psycopg2": APP_JW05, "psycopg": APP_JW05})


def test_xdist_worker_set_after_start_venv_src(launcher: Launcher, venv_src_python: Path) -> None:
    result = launcher.python(venv_src_python, SET_LATE)
    assert_all_landed(result, {"psycopg2": APP_JW05, "psycopg": APP_JW05})


def test_pytest_xdist_worker_from_environment(launcher: Launcher) -> None:
    result = launcher.run([*PSQL_QUERY, URI_APP], {"PYTEST_XDIST_WORKER": "gw5"})
    assert_landed(result, APP_JW05)


def test_dagz_worker_wins_over_xdist_worker(launcher: Launcher) -> None:
    result = launcher.run(
        [*PSQL_QUERY, URI_APP], {"DAGZ_WORKER": "3", "PYTEST_XDIST_WORKER": "gw5"}
    )
    assert_landed(result, APP_JW03)
