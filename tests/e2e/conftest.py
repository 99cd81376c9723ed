"""Fixtures for the dagz end-to-end suite (helpers live in support.py).

Every name the suite creates on the servers starts with the run prefix (``support.RUN_PREFIX``,
``dz_<6 hex>``); the controller's `pytest_sessionfinish` drops all of them at the end of the run,
whatever happened, after the fixtures have dropped their own."""

from __future__ import annotations

import fcntl
import importlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagz.engines.mysql import connection as _mysql
from dagz.engines.postgres import connection as _pg

from support import (
    C_SOURCE,
    DEFAULT_SHIM,
    RUN_ENV,
    RUN_PREFIX,
    RUN_PREFIX_RE,
    TEST_DATABASES,
    VENV_PYTHON,
    VENV_SRC_PYTHON,
    Admin,
    Launcher,
    drop_everything_named,
)

#: A project the auto-mode tests run in a subprocess (it needs their environment).
collect_ignore = ["auto_project"]
#: `private_redis` and the RabbitMQ management API helpers.
pytest_plugins = ["service_support"]


def pytest_configure(config: pytest.Config) -> None:
    if not RUN_PREFIX_RE.fullmatch(RUN_PREFIX):
        raise pytest.UsageError(
            f"{RUN_ENV}={RUN_PREFIX!r} is not a run prefix: use dz_ plus 6 hex digits"
            f" (e.g. {RUN_ENV}=dz_3f9a1c), or leave it unset and the run makes one"
        )


def pytest_report_header(config: pytest.Config) -> str:
    return f"dagz e2e: names on the servers start with {RUN_PREFIX}_ ({RUN_ENV})"


#: What the controller's clean-up did, for the terminal summary.
_CLEANUP: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The controller (or a run without xdist) drops every database and role of this run on
    both servers: what a failed test or a killed child left behind included. A clean-up that
    fails fails the run."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the others may still use the run's databases
    try:
        dropped = drop_everything_named(RUN_PREFIX)
    except Exception as exc:  # reported, and the run fails
        _CLEANUP.append(f"dagz e2e: ERROR: could not drop the run's {RUN_PREFIX}_* names: {exc}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return
    _CLEANUP.append(f"dagz e2e: dropped the run's {len(dropped)} databases/roles ({RUN_PREFIX}_*)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _CLEANUP:
        terminalreporter.write_line(line)


def _require_file(path: Path, what: str, hint: str) -> Path:
    if not path.exists():
        pytest.fail(f"{what} not found at {path}: {hint}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def shim() -> Path:
    """Path of the built shim. A missing shim is a failure, never a skip."""
    path = Path(os.environ.get("DAGZ_E2E_SHIM", str(DEFAULT_SHIM))).resolve()
    return _require_file(path, "libdagz.so", "run `make build` (cargo build --release) first")


@pytest.fixture(scope="session")
def venv_python() -> Path:
    return _require_file(VENV_PYTHON, ".venv python", "run `make venv`")


@pytest.fixture(scope="session")
def venv_src_python() -> Path:
    return _require_file(VENV_SRC_PYTHON, ".venv-src python", "run `make venv`")


@pytest.fixture(scope="session")
def admin() -> Iterator[Admin]:
    a = Admin()
    yield a
    a.close()


@pytest.fixture(scope="session", autouse=True)
def pg_databases(admin: Admin, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ...]:
    """Create the run's shared test databases in PostgreSQL, once per run (also under xdist);
    `pytest_sessionfinish` drops them."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        admin.recreate_databases(TEST_DATABASES)
        return TEST_DATABASES
    # Under xdist every worker runs this fixture; the first one does the work, the others wait
    # for it. The parent of the per-worker basetemp is shared by all workers of this run only.
    shared = tmp_path_factory.getbasetemp().parent
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")
    done = shared / f"dagz-e2e-databases-{run_id}.done"
    with (shared / "dagz-e2e-databases.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            admin.recreate_databases(TEST_DATABASES)
            done.write_text(worker)
    return TEST_DATABASES


@pytest.fixture(scope="session")
def launcher(shim: Path, admin: Admin) -> Launcher:
    return Launcher(shim, admin)


@pytest.fixture(scope="session")
def pg_entrypoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/c/pg_entrypoints.c compiled into a temporary directory (never into the repo)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.fail("no C compiler (gcc) on PATH", pytrace=False)
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libpq"], capture_output=True, text=True, check=False
    )
    if flags.returncode == 0:
        cflags = flags.stdout.split()
    else:  # no pkg-config: fall back to pg_config's include dir
        incdir = subprocess.run(
            ["pg_config", "--includedir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        cflags = [f"-I{incdir}", "-lpq"]
    out = tmp_path_factory.mktemp("cbin") / "pg_entrypoints"
    cmd = [gcc, "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O1", "-Wall", "-Wextra", "-Werror"]
    cmd += ["-o", str(out), str(C_SOURCE), *cflags]
    build = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if build.returncode != 0:
        pytest.fail(f"compiling {C_SOURCE} failed:\n{build.stderr}", pytrace=False)
    return out


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    """A path for a DAGZ_POLICY file in this test's own temporary directory."""
    return tmp_path / "dagz-policy.toml"


@pytest.fixture(params=["psycopg", "psycopg2"])
def pg_driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once with each PostgreSQL driver `dagz._pg` can use (their COPY differs)."""
    name = str(request.param)
    module = importlib.import_module(name)
    monkeypatch.setattr(_pg, "_driver", lambda: (name, module))
    return name


@pytest.fixture(params=["MySQLdb", "pymysql"])
def my_driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once with each MySQL driver `dagz._mysql` can use."""
    name = str(request.param)
    module = importlib.import_module(name)
    monkeypatch.setattr(_mysql, "_driver", lambda: (name, module))
    return name
