"""Worker leases (issue 12 "Two runs on one server", issue 16 "Shards sharing one database
server"): runs that share a server never share a worker database, and dagz never drops or
rebuilds a worker database that another live run holds.

Each test writes a small project of its own into its tmp dir (a conftest configuring
PG_CONFIG and MYSQL_CONFIG the documented way, with ``create_worker_init`` and ``truncate``) over
a base database of its own (``<run prefix>_ls_<8 hex>`` on both servers, `SampleDatabases`), runs
real pytest processes on it and judges from the servers: every test of the inner runs records
``current_database()`` (PostgreSQL) and ``DATABASE()`` (MariaDB) as the servers report them,
with its run id. Every database of the base's name — also worker numbers beyond the run's
worker count (``_jw02``, ``_jw03`` …) — and every role/user a test made are dropped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from dagz.engines import for_engine
from dagz.errors import EngineError
from plugin_support import APPEND_EVENT, SampleDatabases, child_env, run_process
from psycopg import sql

from support import PG_HOST, PG_PORT, PG_USER, VENV_PYTHON, unique_name

MY_KW: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
PG_KW: dict[str, Any] = {"host": PG_HOST, "port": PG_PORT, "user": PG_USER}
TIMEOUT_S = 240.0


@pytest.fixture(scope="session", autouse=True)
def pg_databases() -> tuple[str, ...]:
    """Overrides conftest's autouse fixture: these tests use databases of their own only."""
    return ()


CONFTEST = """
import os

from dagz.integ.psycopg import PG_CONFIG
from dagz.integ.psycopg import create_worker_init as pg_worker_init
from dagz.integ.pymysql import MYSQL_CONFIG
from dagz.integ.pymysql import create_worker_init as my_worker_init

DB = os.environ["DZ_DB"]
PG_KW = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY_KW = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

PG_CONFIG.configure(
    PG_CONFIG.default_rewrite_db_name,
    PG_CONFIG.default_should_reroute,
    lambda db: PG_CONFIG.truncate(db, **PG_KW),
    worker_init=pg_worker_init([DB], **PG_KW),
)
MYSQL_CONFIG.configure(
    MYSQL_CONFIG.default_rewrite_db_name,
    MYSQL_CONFIG.default_should_reroute,
    lambda db: MYSQL_CONFIG.truncate(db, **MY_KW),
    worker_init=my_worker_init([DB], **MY_KW),
)
"""

#: The tests of the inner runs: fixed primary keys, exact counts, the landing recorded from the
#: servers. ``DZ_WAIT_FOR``: a file prefix; each test waits (≤ 60 s) until a file with that
#: prefix exists (the other run has started a test: both runs are alive together), after leaving
#: its own ``DZ_SYNC/<run>.<worker>``. ``DZ_HOLD_UNTIL``: a file the test waits for (≤ 120 s)
#: while it holds its rows, after creating ``DZ_SYNC/<run>.ready``.
TESTS = (
    """
import json
import os
import time

import psycopg
import pymysql
import pytest

DB = os.environ["DZ_DB"]
RUN = os.environ["DZ_RUN"]
SYNC = os.environ["DZ_SYNC"]
HOLD_S = float(os.environ.get("DZ_HOLD_S", "0.5"))


def wait_for(predicate, seconds):
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        time.sleep(0.05)


def record(**fields):
    append_event({"run": RUN, "worker": os.environ.get("PYTEST_XDIST_WORKER", ""), **fields})


@pytest.mark.parametrize("n", range(4))
def test_rows(n):
    me = os.path.join(SYNC, f"{RUN}.{os.environ.get('PYTEST_XDIST_WORKER', 'x')}")
    open(me, "w").close()
    other = os.environ.get("DZ_WAIT_FOR")
    if other:
        wait_for(lambda: any(f.startswith(other) for f in os.listdir(SYNC)), 60)
    pg = psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=DB, autocommit=True)
    my = pymysql.connect(
        host="127.0.0.1", port=3306, user="root", password="", database=DB, autocommit=True
    )
    try:
        pg_db = pg.execute("SELECT current_database()").fetchone()[0]
        cur = my.cursor()
        cur.execute("SELECT DATABASE()")
        my_db = cur.fetchone()[0]
        record(test=f"test_rows[{n}]", pg=pg_db, mysql=my_db)
        pg.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        cur.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        hold = os.environ.get("DZ_HOLD_UNTIL")
        if hold:
            open(os.path.join(SYNC, f"{RUN}.ready"), "w").close()
            wait_for(lambda: os.path.exists(hold), 120)
        else:
            time.sleep(HOLD_S)
        assert pg.execute("SELECT count(*) FROM items").fetchone()[0] == 3
        cur.execute("SELECT count(*) FROM items")
        assert cur.fetchone()[0] == 3
        assert pg.execute("SELECT current_database()").fetchone()[0] == pg_db
    finally:
        pg.close()
        my.close()
"""
    + APPEND_EVENT
)


#: The same project with worker_init functions of its own: dagz does not know the servers, so
#: the leases are lock files (``DAGZ_LEASE_DIR``).
CUSTOM_INIT = (
    CONFTEST.replace(
        "worker_init=pg_worker_init([DB], **PG_KW)",
        "worker_init=lambda n: for_engine('pg').provision(DB, PG_CONFIG.reroute_db(DB), **PG_KW)",
    )
    .replace(
        "worker_init=my_worker_init([DB], **MY_KW)",
        "worker_init=lambda n: for_engine('mysql')"
        ".provision(DB, MYSQL_CONFIG.reroute_db(DB), **MY_KW)",
    )
    .replace("import os\n", "import os\n\nfrom dagz.engines import for_engine\n", 1)
)


#: The zero-config variant (auto mode, no conftest): no per-test reset, so each test inserts keys
#: of its own (a worker's database keeps the rows of its earlier tests, as in a serial run); a
#: second run in the same worker database fails on a duplicate key or a count.
AUTO_TESTS = (
    TESTS.replace(
        "    me = os.path.join(",
        "    keys = (10 * n + 1, 10 * n + 2, 10 * n + 3)\n    me = os.path.join(",
    )
    .replace(
        "VALUES (1, 'a'), (2, 'b'), (3, 'c')\")", "VALUES (%s, 'a'), (%s, 'b'), (%s, 'c')\", keys)"
    )
    .replace(
        '"SELECT count(*) FROM items")',
        '"SELECT count(*) FROM items WHERE id IN (%s, %s, %s)", keys)',
    )
)


def _project(root: Path, conftest: str | None = CONFTEST, tests: str = TESTS) -> Path:
    project = root / "project"
    project.mkdir()
    if conftest is not None:
        (project / "conftest.py").write_text(conftest)
    (project / "test_rows.py").write_text(tests)
    (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return project


def _env(dbs: SampleDatabases, root: Path, run: str, **extra: str) -> dict[str, str]:
    tmp = root / f"tmp-{run}"
    tmp.mkdir(exist_ok=True)
    return child_env(
        {
            "TMPDIR": str(tmp),
            "DZ_DB": dbs.base,
            "DZ_RUN": run,
            "DZ_SYNC": str(root / "sync"),
            "DZ_EVENTS": str(root / "events.jsonl"),
            **extra,
        }
    )


def _argv(root: Path, run: str, *args: str) -> list[str]:
    return [
        str(VENV_PYTHON),
        "-m",
        "pytest",
        f"--basetemp={root / f'basetemp-{run}'}",
        *args,
        str(root / "project"),
    ]


def _events(root: Path) -> list[dict[str, Any]]:
    path = root / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def _databases(tag: str) -> Iterator[SampleDatabases]:
    """A fresh base on both servers; every database of its name (any worker number) is
    dropped afterwards, whatever happened."""
    dbs = SampleDatabases(unique_name(tag))
    try:
        dbs.create()
        yield dbs
    finally:
        dbs.drop_all()


_MOVED = re.compile(r"gw(\d+) → worker (\d+) \(worker (\d+) is leased by another run\)")


def _two_runs_disjoint(root: Path, tag: str) -> dict[str, tuple[int, str, str, float]]:
    """Runs the project at `root` twice at the same moment (``--dagz-workers 2`` each, every
    test waiting until the other run has started a test) and checks from the servers' own
    words (``current_database()`` / ``DATABASE()`` recorded by every test) that both passed in
    disjoint worker databases, and that a worker that took another number said so. Every
    database of the base's name is dropped afterwards; no lease file is left."""
    (root / "sync").mkdir()
    leases = root / "leases"
    with _databases(tag) as dbs:
        runs = {"a": "b", "b": "a"}
        with ThreadPoolExecutor(2) as pool:
            futures = {
                run: pool.submit(
                    run_process,
                    _argv(root, run, "--dagz-workers", "2", "-q"),
                    _env(
                        dbs,
                        root,
                        run,
                        DZ_WAIT_FOR=f"{other}.",
                        DZ_HOLD_S="0.5",
                        DAGZ_LEASE_DIR=str(leases),
                    ),
                    root,
                    TIMEOUT_S,
                )
                for run, other in runs.items()
            }
            results = {run: f.result() for run, f in futures.items()}
        for run, (rc, out, err, _s) in results.items():
            assert rc == 0, f"run {run} failed:\n{out[-6000:]}\n{err[-4000:]}"
        events = _events(root)
        used: dict[str, set[tuple[str, str]]] = defaultdict(set)
        numbers: dict[str, dict[str, int]] = defaultdict(dict)
        for e in events:
            used[e["run"]] |= {("pg", e["pg"]), ("mysql", e["mysql"])}
            for family in ("pg", "mysql"):
                m = re.fullmatch(re.escape(dbs.base) + r"_jw(\d\d)", e[family])
                assert m, f"run {e['run']} {e['test']} landed in {e[family]}"
                numbers[e["run"]][e["worker"]] = int(m[1])
        assert len([e for e in events if e["run"] == "a"]) == 4, events
        assert len([e for e in events if e["run"] == "b"]) == 4, events
        for nums in numbers.values():  # within a run too: one database per worker
            assert len(set(nums.values())) == len(nums), numbers
        shared = used["a"] & used["b"]
        assert not shared, f"worker databases used by both runs: {sorted(shared)}"
        moved = 0
        for run, (_rc, out, _err, _s) in results.items():
            said = {(int(m[1]), int(m[2])) for m in _MOVED.finditer(out)}
            for worker, num in numbers[run].items():
                k = int(worker.removeprefix("gw"))
                if num != k:
                    moved += 1
                    assert (k, num) in said, f"run {run}: {worker} → {num} not said:\n{out}"
                    assert num % 2 == k % 2, f"{worker} took {num}, not in its own lane"
        # The runs overlapped (each test waited for the other run): one of them moved on.
        assert moved >= 2, numbers
        files = sorted(p.name for p in leases.iterdir()) if leases.exists() else []
        assert not files, f"lease files left: {files}"
    return results


@pytest.mark.parametrize("init", ["create_worker_init", "custom"])
def test_two_runs_started_together_use_disjoint_worker_databases(tmp_path: Path, init: str) -> None:
    """Two `--dagz-workers 2` runs of one project started at the same moment against one
    server: both pass (fixed primary keys, exact counts), the worker databases the servers saw
    under each run are disjoint, and a run whose worker took another number says so. With
    worker_init functions of the project's own (dagz does not know the server) the leases are
    lock files, which the summary says, and none is left when the runs are over."""
    _project(tmp_path, CONFTEST if init == "create_worker_init" else CUSTOM_INIT)
    results = _two_runs_disjoint(tmp_path, "ls")
    if init == "custom":
        for _rc, out, _err, _s in results.values():
            assert "worker leases are lock files in" in out, out


def test_two_zero_config_runs_started_together_use_disjoint_worker_databases(
    tmp_path: Path,
) -> None:
    """The same with no conftest (auto mode, issue 13): each worker leases its databases on the
    servers it connects to (the connect's own settings) before naming them, so the second run's
    workers move to free numbers instead of sharing (and rebuilding) the first run's
    ``_jw00``/``_jw01``; both runs pass, in four distinct worker databases per server."""
    _project(tmp_path, None, AUTO_TESTS)
    results = _two_runs_disjoint(tmp_path, "la")
    for _rc, out, _err, _s in results.values():
        assert "(auto mode)" in out, out
        assert "worker leases are lock files" not in out, out


HOLDER_TIMEOUT_S = 180.0


def _dagz_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_PYTHON), "-m", "dagz.cli", *args],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_drop_and_rebuild_spare_a_database_a_live_run_holds(tmp_path: Path) -> None:
    """A run holds its worker database (a test waits with rows in it): `dagz db drop --base`
    and a rebuild (`provision(..., fresh=True)`) of that database from another process both
    leave it alone and say why; the run then passes with its rows intact. Once that run has
    ended, the same drop removes the database (the lease went with the run)."""
    _project(tmp_path)
    sync = tmp_path / "sync"
    sync.mkdir()
    go = tmp_path / "go"
    with _databases("lh") as dbs:
        target = dbs.worker(0)
        argv = _argv(tmp_path, "h", "--dagz-workers", "1", "-q", "-k", "test_rows[0]")
        env = _env(dbs, tmp_path, "h", DZ_HOLD_UNTIL=str(go))
        proc = subprocess.Popen(
            argv,
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            end = time.monotonic() + HOLDER_TIMEOUT_S
            while not (sync / "h.ready").exists() and proc.poll() is None:
                assert time.monotonic() < end, "the holding run never got ready"
                time.sleep(0.1)
            assert proc.poll() is None, proc.communicate()
            assert target in dbs.pg_databases()
            assert target in dbs.mysql_databases()
            drop = _dagz_cli("db", "drop", "--base", dbs.base)
            text = drop.stdout + drop.stderr
            for engine in ("pg", "mysql"):
                assert re.search(
                    rf"skipped {engine} {re.escape(target)} .*in use by a live run", text
                ), text
            assert target in dbs.pg_databases(), text
            assert target in dbs.mysql_databases(), text
            for engine, kw in (("pg", PG_KW), ("mysql", MY_KW)):
                with pytest.raises(EngineError, match="in use by a live run"):
                    for_engine(engine).provision(dbs.base, target, fresh=True, **kw)
            assert target in dbs.pg_databases()
            assert target in dbs.mysql_databases()
            assert dbs.pg_count(target, "items") == 3
            assert dbs.mysql_count(target, "items") == 3
            go.touch()
            out, err = proc.communicate(timeout=HOLDER_TIMEOUT_S)
        finally:
            go.touch()
            if proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == 0, f"{out[-6000:]}\n{err[-4000:]}"
        (event,) = _events(tmp_path)
        assert (event["pg"], event["mysql"]) == (target, target)
        after = _dagz_cli("db", "drop", "--base", dbs.base)
        assert after.returncode == 0, after.stdout + after.stderr
        assert target not in dbs.pg_databases(), after.stdout
        assert target not in dbs.mysql_databases(), after.stdout


LEFTOVER_TESTS = """
import os

import psycopg
import pymysql

ROLE = os.environ["DZ_ROLE"]


def test_makes_a_role():
    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=os.environ["DZ_DB"],
                         autocommit=True) as pg:
        pg.execute(f'CREATE ROLE "{ROLE}"')


def test_makes_a_user():
    my = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="",
                         database=os.environ["DZ_DB"], autocommit=True)
    try:
        my.cursor().execute(f"CREATE USER '{ROLE}'@'localhost'")
    finally:
        my.close()
"""


def test_cluster_wide_objects_left_by_tests_are_reported(tmp_path: Path) -> None:
    """A test that creates a role (PostgreSQL) and one that creates a user (MariaDB) and leave
    them: the run's summary names each object; the objects are dropped here afterwards."""
    project = _project(tmp_path)
    (project / "test_rows.py").unlink()
    (project / "test_leftovers.py").write_text(LEFTOVER_TESTS)
    (tmp_path / "sync").mkdir()
    role = unique_name("lr")
    try:
        with _databases("lc") as dbs:
            rc, out, err, _s = run_process(
                _argv(tmp_path, "c", "--dagz-workers", "2", "-q"),
                _env(dbs, tmp_path, "c", DZ_ROLE=role),
                tmp_path,
                TIMEOUT_S,
            )
            assert rc == 0, f"{out[-6000:]}\n{err[-4000:]}"
            role_line = [ln for ln in out.splitlines() if f"role '{role}'" in ln]
            user_line = [ln for ln in out.splitlines() if f"user '{role}'@'localhost'" in ln]
            assert len(role_line) == 1, out
            assert len(user_line) == 1, out
            assert "left by a test" in role_line[0], out
            assert "test_makes_a_role" in role_line[0], out
            assert "test_makes_a_user" in user_line[0], out
    finally:
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
        ) as pg:
            pg.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        my = pymysql.connect(**MY_KW, autocommit=True)
        try:
            my.cursor().execute(f"DROP USER IF EXISTS '{role}'@'localhost'")
        finally:
            my.close()
