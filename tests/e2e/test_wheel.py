"""Acceptance (issue 11, packaging): the built wheel is a ``py3-none-<platform>`` wheel with a
stripped ``dagz/libdagz.so`` that still exports the C API, and it installs into a fresh virtualenv
whose ``PATH`` has no cargo, where ``pytest --dagz-workers 2`` runs a small PostgreSQL suite on two
worker databases.

The wheel is ``$DAGZ_E2E_WHEEL`` (e.g. what ``make wheel`` left in dist/) or, when that is unset,
built once per run by ``pip wheel`` from a copy of the working tree into pytest's tmp dir (cargo's
target directory there too), shared by the xdist workers of this suite under a file lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from plugin_support import (
    SampleDatabases,
    _parse_junit,
    child_env,
    new_base_name,
    run_process,
)
from psycopg import sql
from test_plugin_venv import _NOT_SOURCE, _shared_dir, _site_packages

from support import PG_HOST, PG_PORT, PG_USER, REPO_ROOT

WHEEL_ENV = "DAGZ_E2E_WHEEL"
BUILD_TIMEOUT_S = 900.0
PIP_QUIET = ["--disable-pip-version-check", "--no-input", "-q"]
#: The inner suite: N tests, each inserting the same primary key (a clash if two shared a database).
INNER_TESTS = 6
#: Variables that would hand the inner processes a Rust toolchain by another way than PATH.
_RUST_VARS = ("CARGO", "RUSTC", "RUSTUP_", "CARGO_", "RUSTFLAGS")


# --- the wheel ---------------------------------------------------------------------------------


def _build_wheel(root: Path) -> Path:
    src = root / "src"
    shutil.copytree(REPO_ROOT, src, ignore=_NOT_SOURCE)
    out = root / "dist"
    env = child_env({"CARGO_TARGET_DIR": str(root / "cargo-target")})
    argv = [sys.executable, "-m", "pip", "wheel", *PIP_QUIET, "--no-deps", "-w", str(out), str(src)]
    rc, stdout, stderr, seconds = run_process(argv, env, root, timeout=BUILD_TIMEOUT_S)
    if rc != 0:
        raise RuntimeError(f"{argv} failed (rc={rc}, {seconds:.0f}s)\n{stdout[-4000:]}\n{stderr}")
    wheels = sorted(out.glob("dagz-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"pip wheel left {wheels} in {out}, expected one dagz wheel")
    return wheels[0]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel under test: ``$DAGZ_E2E_WHEEL``, or one built from the working tree (once)."""
    given = os.environ.get(WHEEL_ENV)
    if given:
        path = Path(given).resolve()
        if not (path.is_file() and path.name.endswith(".whl")):
            pytest.fail(f"{WHEEL_ENV}={given!r} is not a wheel file: run `make wheel`, or unset it")
        return path
    root = _shared_dir(tmp_path_factory) / "dagz-wheel"
    root.mkdir(exist_ok=True)
    done, failed = root / "done", root / "failed"
    with (root / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists() and not failed.exists():
            try:
                done.write_text(str(_build_wheel(root)))
            except (RuntimeError, OSError) as exc:
                failed.write_text(str(exc))
    if failed.exists():
        pytest.fail(f"building the wheel failed:\n{failed.read_text()}", pytrace=False)
    return Path(done.read_text())


def _tool(argv: list[str]) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"{argv}: rc={proc.returncode}\n{proc.stderr}"
    return proc.stdout


def test_wheel_is_py3_platform_with_stripped_library(wheel: Path, tmp_path: Path) -> None:
    name, version, python, abi, plat = wheel.name.removesuffix(".whl").split("-")
    assert (name, python, abi) == ("dagz", "py3", "none"), wheel.name
    assert re.fullmatch(rf"(many)?linux(_\d+_\d+)?_{platform.machine()}", plat), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        libs = sorted(n for n in names if n.endswith(".so"))
        assert libs == ["dagz/libdagz.so"], libs
        assert {"dagz/dagz.h", "dagz/_shim.py", "dagz/plugin.py"} <= names, sorted(names)
        wheel_file = zf.read(f"dagz-{version}.dist-info/WHEEL").decode()
        lib = Path(zf.extract("dagz/libdagz.so", tmp_path))
        header = zf.read("dagz/dagz.h").decode()
    assert "Root-Is-Purelib: false" in wheel_file, wheel_file
    sections = _tool(["readelf", "-S", "-W", str(lib)])
    assert ".debug_" not in sections, f"libdagz.so in the wheel is not stripped:\n{sections}"
    exported = set(
        re.findall(r"\sT\s+(dagz_\w+)$", _tool(["nm", "-D", "--defined-only", str(lib)]), re.M)
    )
    declared = set(re.findall(r"\b(dagz_\w+)\s*\(", header))
    assert declared, header
    assert declared <= exported, f"declared in dagz.h, not exported: {sorted(declared - exported)}"


# --- a fresh venv without cargo -----------------------------------------------------------------


def _path_without_rust(venv: Path) -> str:
    """The runner's PATH behind the venv's bin, minus every directory holding cargo or rustc."""
    dirs = [str(venv / "bin")]
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and not any((Path(entry) / tool).exists() for tool in ("cargo", "rustc")):
            dirs.append(entry)
    return os.pathsep.join(dirs)


def _no_rust_env(venv: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in child_env(extra).items() if not k.startswith(_RUST_VARS)}
    env["PATH"] = _path_without_rust(venv)
    env["VIRTUAL_ENV"] = str(venv)
    return env


CONFTEST = '''
"""The README's conftest, for psycopg2; the base database is $DZ_WHEEL_DB."""
import os

from dagz.integ.psycopg2 import PG_CONFIG, create_worker_init

KW = {"host": "127.0.0.1", "user": "postgres"}


def _prepare(db_name):  # once per test, on its first connect to db_name
    PG_CONFIG.truncate(db_name, **KW)


PG_CONFIG.configure(
    PG_CONFIG.default_rewrite_db_name,
    PG_CONFIG.default_should_reroute,
    _prepare,
    worker_init=create_worker_init([os.environ["DZ_WHEEL_DB"]], **KW),
)
'''

TESTS = '''
"""Each test inserts primary key 1 into items of the base database and records where it landed."""
import json
import os
from pathlib import Path

import psycopg2
import pytest


def mapped_shim():
    with open("/proc/self/maps") as fh:
        paths = {line.split()[-1] for line in fh if "libdagz" in line}
    return sorted(paths)


@pytest.mark.parametrize("n", range(int(os.environ["DZ_WHEEL_TESTS"])))
def test_insert_fixed_key(n):
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=os.environ["DZ_WHEEL_DB"])
    try:
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO items (id, label) VALUES (1, %s)", (f"t{n}",))
            cur.execute("SELECT current_database(), count(*) FROM items")
            db, rows = cur.fetchone()
    finally:
        conn.close()
    record = {"test": f"t{n}", "db": db, "shim": mapped_shim()}
    Path(os.environ["DZ_WHEEL_RECORD"], f"t{n}.json").write_text(json.dumps(record))
    assert rows == 1, record
'''


@pytest.fixture
def base_db() -> Iterator[SampleDatabases]:
    """A fresh ``dz_…`` base database with one table; it and its ``_jwNN`` copies are dropped at
    the end, whatever happened."""
    dbs = SampleDatabases(new_base_name())
    try:
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbs.base)))
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbs.base) as conn:
            conn.execute("CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL)")
        yield dbs
    finally:
        dbs.drop_all()


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    rc, stdout, stderr, seconds = run_process(argv, env, cwd, timeout=BUILD_TIMEOUT_S)
    assert rc == 0, f"{argv}: rc={rc} after {seconds:.0f}s\n{stdout[-6000:]}\n{stderr[-6000:]}"
    return stdout


def test_wheel_runs_dagz_workers_without_cargo(
    wheel: Path, base_db: SampleDatabases, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "venv", str(venv)], child_env(), tmp_path)
    env = _no_rust_env(venv, {"TMPDIR": str(tmp_path)})
    assert shutil.which("cargo", path=env["PATH"]) is None, env["PATH"]
    assert shutil.which("rustc", path=env["PATH"]) is None, env["PATH"]
    # binaries only: nothing is compiled, so a wheel that needed a build would fail here
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            *PIP_QUIET,
            "--only-binary=:all:",
            str(wheel),
            "pytest",
            "pytest-xdist",
            "psycopg2-binary",
        ],
        env,
        tmp_path,
    )
    site = _site_packages(python)
    shim = Path(_run([str(venv / "bin" / "dagz"), "shim-path"], env, tmp_path).strip()).resolve()
    assert shim == site / "dagz" / "libdagz.so", (shim, site)
    assert shim.is_file(), shim

    project, record, junit = tmp_path / "project", tmp_path / "record", tmp_path / "junit.xml"
    project.mkdir()
    record.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "conftest.py").write_text(textwrap.dedent(CONFTEST).lstrip())
    (project / "test_rows.py").write_text(textwrap.dedent(TESTS).lstrip())
    inner = {
        "DZ_WHEEL_DB": base_db.base,
        "DZ_WHEEL_RECORD": str(record),
        "DZ_WHEEL_TESTS": str(INNER_TESTS),
    }
    argv = [
        str(python),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--dagz-workers",
        "2",
        f"--junitxml={junit}",
        f"--basetemp={tmp_path / 'basetemp'}",
        "test_rows.py",
    ]
    rc, stdout, stderr, _ = run_process(argv, {**env, **inner}, project, timeout=BUILD_TIMEOUT_S)
    outcomes = _parse_junit(junit)
    report = f"rc={rc}\n{stdout[-6000:]}\n{stderr[-6000:]}"
    assert rc == 0, report
    assert len(outcomes) == INNER_TESTS, report
    assert all(o.outcome == "passed" for o in outcomes.values()), report

    # where the tests landed, as the server told each of them (current_database())
    records = [json.loads(p.read_text()) for p in sorted(record.glob("*.json"))]
    assert len(records) == INNER_TESTS, records
    workers = {base_db.worker(0), base_db.worker(1)}
    assert {r["db"] for r in records} == workers, records
    assert all(r["shim"] == [str(shim)] for r in records), records
    # and on the server now: the base untouched, each worker database kept its last test's row
    assert base_db.pg_databases() == sorted({base_db.base, *workers})
    assert base_db.pg_count(base_db.base, "items") == 0
    for db in workers:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=db) as conn:
            labels = [r[0] for r in conn.execute("SELECT label FROM items")]
        assert len(labels) == 1, (db, labels)
        assert labels[0] in {r["test"] for r in records if r["db"] == db}, (db, labels, records)
