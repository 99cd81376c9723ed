"""Helpers of the plugin acceptance tests (``test_plugin_*.py``).

Each test gets its own base database name (``<run prefix>_sp_<8 hex>``) on PostgreSQL and MariaDB,
created with the sample schema, and a copy of ``sample_project/myproject`` in its tmp dir. It runs
pytest on that copy in a subprocess (``.venv/bin/python -m pytest``) with a controlled environment,
then judges from three sources: the JUnit XML of the inner run (per-test outcomes), the events that
the sample's callbacks and tests append to a file (``dzsample.record``), and the servers themselves
(which databases exist, row counts). At the end every database of that base name is dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from psycopg import sql

from support import PG_HOST, PG_PORT, PG_USER, VENV_PYTHON, stripped_env, unique_name

SAMPLE_PROJECT = Path(__file__).resolve().parent / "sample_project" / "myproject"

MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306
MYSQL_USER = "root"

#: Rows of ``keep_me`` in each base database (the sample's truncate tests check them).
KEEP_ROWS = 5

PG_SCHEMA = (
    "CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL)",
    "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)",
    "CREATE TABLE keep_me (id integer PRIMARY KEY, note text NOT NULL)",
    f"INSERT INTO keep_me SELECT g, 'seed ' || g FROM generate_series(1, {KEEP_ROWS}) g",
)
MYSQL_SCHEMA = (
    "CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(100) NOT NULL) ENGINE=InnoDB",
    "CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body VARCHAR(100) NOT NULL)"
    " ENGINE=InnoDB",
    "CREATE TABLE keep_me (id INT PRIMARY KEY, note VARCHAR(100) NOT NULL) ENGINE=InnoDB",
    "INSERT INTO keep_me VALUES "
    + ", ".join(f"({i}, 'seed {i}')" for i in range(1, KEEP_ROWS + 1)),
)

#: Part of an inner project's test module: `append_event(entry)` appends `entry` as one JSON line
#: to $DZ_EVENTS in a single write (O_APPEND: concurrent workers and runs never interleave).
APPEND_EVENT = """
def append_event(entry):
    import json, os
    fd = os.open(os.environ["DZ_EVENTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\\n").encode())
    finally:
        os.close(fd)
"""

#: The runner's variables that must not reach the inner pytest: it may itself be an xdist worker
#: (PYTEST_XDIST_*), and DAGZ_*/LD_PRELOAD/PG*/PSYCOPG_* would change what the sample does.
_STRIPPED_PREFIXES = (
    "DAGZ_",
    "PYTEST_",
    "PG",
    "PSYCOPG_",
    "DZ_",
    "LD_PRELOAD",
    "LD_AUDIT",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "VIRTUAL_ENV",
)

INNER_TIMEOUT_S = 240.0


def new_base_name() -> str:
    return unique_name("sp")


def worker_number(worker: str) -> int:
    """``gw3`` → 3; a run without xdist is worker 0."""
    return int(worker[2:]) if worker.startswith("gw") else 0


# --- databases ---------------------------------------------------------------------------------


def _pg(dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True, connect_timeout=10
    )


def _mysql(database: str | None = None) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        password="",
        database=database,
        autocommit=True,
        connect_timeout=10,
    )


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


class SampleDatabases:
    """The base database ``base`` on both servers, its ``base_jwNN`` variants, server-side views."""

    def __init__(self, base: str) -> None:
        self.base = base

    def worker(self, num: int) -> str:
        return f"{self.base}_jw{num:02}"

    def create(self) -> None:
        self.drop_all()
        with _pg() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.base)))
        with _pg(self.base) as conn:
            for statement in PG_SCHEMA:
                conn.execute(statement.encode())
        conn = _mysql()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{self.base}`")
                cur.execute(f"USE `{self.base}`")
                for statement in MYSQL_SCHEMA:
                    cur.execute(statement)
        finally:
            conn.close()

    def pg_databases(self) -> list[str]:
        with _pg() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1",
                (_like_prefix(self.base),),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def mysql_databases(self) -> list[str]:
        conn = _mysql()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW DATABASES LIKE %s", (_like_prefix(self.base),))
                return sorted(str(r[0]) for r in cur.fetchall())
        finally:
            conn.close()

    def databases(self, family: str) -> list[str]:
        return self.pg_databases() if family == "pg" else self.mysql_databases()

    def pg_count(self, db: str, table: str) -> int:
        with _pg(db) as conn:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()
        assert row is not None
        return int(row[0])

    def mysql_count(self, db: str, table: str) -> int:
        conn = _mysql(db)
        try:
            with conn.cursor() as cur:
                cur.execute(f"SELECT count(*) FROM `{table}`")
                row = cur.fetchone()
        finally:
            conn.close()
        assert row is not None
        return int(row[0])

    def count(self, family: str, db: str, table: str) -> int:
        return self.pg_count(db, table) if family == "pg" else self.mysql_count(db, table)

    def drop_all(self) -> None:
        """Drops ``base`` and every database whose name starts with it, on both servers."""
        with _pg() as conn:
            for name in self.pg_databases():
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        conn = _mysql()
        try:
            with conn.cursor() as cur:
                for name in self.mysql_databases():
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


# --- inner pytest runs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    nodeid: str
    outcome: str  # passed, failed, error, skipped
    message: str


@dataclass
class SampleRun:
    """One inner pytest run: exit code, output, per-test outcomes and the events it logged."""

    argv: list[str]
    env: dict[str, str]
    rc: int
    stdout: str
    stderr: str
    seconds: float
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __repr__(self) -> str:  # keep assertion rewriting short; describe() has it all
        return f"SampleRun(rc={self.rc}, tests={len(self.outcomes)})"

    def describe(self, limit: int = 12000) -> str:
        dz_env = {k: v for k, v in sorted(self.env.items()) if k.startswith(("DZ_", "LD_", "PSY"))}
        bad = [f"  {o.outcome}: {o.nodeid}: {o.message[:400]}" for o in self.not_passed()]
        out = self.stdout[-limit:]
        err = self.stderr[-limit // 2 :]
        return (
            f"argv={self.argv}\nenv={dz_env}\nrc={self.rc} in {self.seconds:.1f}s, "
            f"{len(self.outcomes)} tests, {Counter(o.outcome for o in self.outcomes.values())}\n"
            + "\n".join(bad)
            + f"\n--- stdout (tail) ---\n{out}\n--- stderr (tail) ---\n{err}"
        )

    def not_passed(self) -> list[Outcome]:
        return [o for o in self.outcomes.values() if o.outcome != "passed"]

    def by_outcome(self, outcome: str) -> list[str]:
        return sorted(o.nodeid for o in self.outcomes.values() if o.outcome == outcome)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]

    def landed(self, test_prefix: str = "") -> list[dict[str, Any]]:
        return [e for e in self.of("landed") if (e.get("test") or "").startswith(test_prefix)]


def _parse_junit(path: Path) -> dict[str, Outcome]:
    if not path.exists():
        return {}
    outcomes: dict[str, Outcome] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        classname = case.get("classname", "")
        name = case.get("name", "")
        module = classname.replace(".", "/") + ".py" if classname else ""
        nodeid = f"{module}::{name}" if module else name
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
                message = (child.get("message") or "") + "\n" + (child.text or "")
                if child.tag != "skipped":
                    break
        if outcome == "failure":
            outcome = "failed"
        previous = outcomes.get(nodeid)
        # a test that passed its call but errored in teardown appears twice: the error wins
        if previous is None or previous.outcome == "passed":
            outcomes[nodeid] = Outcome(nodeid, outcome, message.strip())
    return outcomes


def _read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The runner's environment minus its pytest/xdist/dagz/libpq variables, plus ``extra``."""
    env = stripped_env(_STRIPPED_PREFIXES)
    env.update(extra or {})
    return env


def run_process(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    timeout: float = INNER_TIMEOUT_S,
) -> tuple[int, str, str, float]:
    """Runs ``argv`` in its own process group; on timeout the whole group is killed and the
    test fails (a hang is a failure, never a skip)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(
            f"timed out after {timeout}s: {list(argv)}\n--- stdout ---\n{stdout[-8000:]}\n"
            f"--- stderr ---\n{stderr[-8000:]}"
        )
    finally:
        # xdist workers of a run that ended badly must not outlive it
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, stdout, stderr, time.monotonic() - start


class SampleProject:
    """A copy of the sample project bound to one set of databases."""

    def __init__(self, root: Path, dbs: SampleDatabases, python: Path = VENV_PYTHON) -> None:
        self.root = root
        self.dbs = dbs
        self.python = python
        self.dir = root / "project"
        shutil.copytree(
            SAMPLE_PROJECT, self.dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        self._runs = 0

    def run(
        self,
        *args: str,
        files: Iterable[str],
        env: Mapping[str, str] | None = None,
        preload: Path | None = None,
        families: str = "pg,mysql",
        timeout: float = INNER_TIMEOUT_S,
    ) -> SampleRun:
        """``python -m pytest ARGS FILES`` in the project copy; ``preload`` sets LD_PRELOAD."""
        self._runs += 1
        run_dir = self.root / f"run{self._runs}"
        run_dir.mkdir()
        events = run_dir / "events.jsonl"
        junit = run_dir / "junit.xml"
        tmp = run_dir / "tmp"  # the run's TMPDIR: what it leaves there is visible to the test
        tmp.mkdir()
        extra = {
            "TMPDIR": str(tmp),
            "DZ_DB": self.dbs.base,
            "DZ_EVENTS": str(events),
            "DZ_FAMILIES": families,
            **(env or {}),
        }
        if preload is not None:
            extra["LD_PRELOAD"] = str(preload)
        full_env = child_env(extra)
        argv = [
            str(self.python),
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            f"--basetemp={run_dir / 'basetemp'}",
            f"--junitxml={junit}",
            "-o",
            "junit_family=xunit2",
            *args,
            *files,
        ]
        rc, stdout, stderr, seconds = run_process(argv, full_env, self.dir, timeout)
        return SampleRun(
            argv=argv,
            env=full_env,
            rc=rc,
            stdout=stdout,
            stderr=stderr,
            seconds=seconds,
            outcomes=_parse_junit(junit),
            events=_read_events(events),
        )


@contextlib.contextmanager
def sample_project(root: Path, python: Path = VENV_PYTHON) -> Iterator[SampleProject]:
    """A fresh base database (both servers) and a project copy; every database of that base
    name is dropped afterwards, whatever happened."""
    dbs = SampleDatabases(new_base_name())
    try:
        dbs.create()
        yield SampleProject(root, dbs, python)
    finally:
        dbs.drop_all()


# --- judging a run ----------------------------------------------------------------------------

SHIM_ERROR_FRAGMENTS = ("dagz:",)
CRASH_MARKERS = re.compile(r"node down|crashed|Segmentation fault|core dumped|Fatal Python error")


def assert_passed(run: SampleRun, *, at_least: int) -> None:
    assert run.rc == 0, run.describe()
    assert len(run.outcomes) >= at_least, run.describe()
    assert not run.not_passed(), run.describe()


def expected_db(base: str, worker: str, *, rerouted: bool = True) -> str:
    return f"{base}_jw{worker_number(worker):02}" if rerouted else base


def landing_problems(
    run: SampleRun, base: str, *, rerouted: bool = True, prefix: str = ""
) -> list[str]:
    """Every non-bypassed landing of a test must be the test's worker's database (or the base
    database when ``rerouted`` is false). System databases (``rerouted: false``) are skipped."""
    problems = []
    for e in run.landed(prefix):
        if e.get("bypassed") or e.get("rerouted") is False:
            continue
        want = expected_db(base, e["worker"], rerouted=rerouted)
        if e["db"] != want:
            problems.append(
                f"{e['test']} [{e['worker']}] {e['driver']} landed in {e['db']}, want {want}"
            )
    return problems


Touches = dict[tuple[str, str], set[str]]  # (pid, family) -> tests
PerTest = dict[str, set[tuple[str, str]]]  # test -> {(family, db)}


def lifecycle_problems(
    run: SampleRun, base: str, families: Iterable[str], *, workers: set[str] | None = None
) -> list[str]:
    """The worker_init/prepare contract, from the events of a run with default rewriting:

    * ``worker_init`` exactly once per worker process and family that rerouted anything, with
      the worker's number, and never in a process that rerouted nothing of that family;
    * ``prepare`` exactly once per (test, per-worker database it touched), for no other database,
      and not for a database that a manual-init helper marked in that very test.

    ``workers`` limits the check to the events of those xdist workers.
    """
    if workers is not None:
        run = dataclasses.replace(run, events=[e for e in run.events if e["worker"] in workers])
    jw = re.compile(re.escape(base) + r"_jw\d+$")
    touched: Touches = defaultdict(set)
    per_test: PerTest = defaultdict(set)
    for e in run.landed():
        if e.get("bypassed") or not jw.match(e["db"]) or e.get("child"):
            continue
        touched[(str(e["pid"]), e["family"])].add(e["test"])
        per_test[e["test"]].add((e["family"], e["db"]))
    manual: PerTest = defaultdict(set)
    for e in run.of("manual"):
        manual[e["test"]].add((e["family"], e["db"]))
        touched[(str(e["pid"]), e["family"])].add(e["test"])
    return _worker_init_problems(run, touched, set(families)) + _prepare_problems(
        run, jw, per_test, manual
    )


def _worker_init_problems(run: SampleRun, touched: Touches, families: set[str]) -> list[str]:
    problems = [
        f"worker_init({e['arg']}) ran on {e['worker']}"
        for e in run.of("worker_init")
        if e["arg"] != worker_number(e["worker"])
    ]
    inits = Counter((str(e["pid"]), e["family"]) for e in run.of("worker_init"))
    for key in sorted(set(touched) | set(inits)):
        pid, family = key
        want = 1 if key in touched else 0
        if family in families and inits[key] != want:
            problems.append(
                f"worker_init ran {inits[key]} times for {family} in pid {pid} (want {want})"
            )
    return problems


def _prepare_problems(
    run: SampleRun, jw: re.Pattern[str], per_test: PerTest, manual: PerTest
) -> list[str]:
    problems = []
    prepared = Counter((e["test"], e["family"], e["db"]) for e in run.of("prepare"))
    for (test, family, db), n in prepared.items():
        if n != 1:
            problems.append(f"prepare({db}) ran {n} times in {test}")
        if not jw.match(db):
            problems.append(f"prepare({db}) in {test}: not a per-worker database")
        if (family, db) in manual.get(test, set()):
            problems.append(f"prepare({db}) ran in {test} although it was marked manual-init")
        if (family, db) not in per_test.get(test, set()) | manual.get(test, set()):
            problems.append(f"prepare({db}) ran in {test}, which did not connect to it")
    for test, dbs in per_test.items():
        for family, db in sorted(dbs - manual.get(test, set())):
            if (test, family, db) not in prepared:
                problems.append(f"{test} connected to {db} but prepare({db}) never ran for it")
    return problems


def tests_in_order(run: SampleRun) -> dict[str, list[str]]:
    """pid → the tests that logged anything in that process, in the order they ran."""
    order: dict[str, list[str]] = defaultdict(list)
    for e in run.events:
        test = e.get("test")
        if test and test not in order[str(e["pid"])]:
            order[str(e["pid"])].append(test)
    return order


def manual_followups(run: SampleRun, base: str) -> list[tuple[str, str, str, bool]]:
    """For each manual-init mark: (manual test, family, the next test of the same worker process
    that connected to that database without marking it, whether prepare ran for it there)."""
    order = tests_in_order(run)
    landed = {
        (e["test"], e["family"], e["db"])
        for e in run.landed()
        if not e.get("bypassed") and e["db"].startswith(f"{base}_jw")
    }
    prepared = {(e["test"], e["family"], e["db"]) for e in run.of("prepare")}
    marked = {(e["test"], e["family"], e["db"]) for e in run.of("manual")}
    pairs = []
    for m in run.of("manual"):
        tests = order[str(m["pid"])]
        later = tests[tests.index(m["test"]) + 1 :]
        key = (m["family"], m["db"])
        nxt = next((t for t in later if (t, *key) in landed and (t, *key) not in marked), None)
        if nxt is not None:
            pairs.append((m["test"], m["family"], nxt, (nxt, m["family"], m["db"]) in prepared))
    return pairs


# --- small inline projects -----------------------------------------------------------------------


@contextlib.contextmanager
def sample_databases() -> Iterator[SampleDatabases]:
    """A fresh base (both servers), every database of its name dropped afterwards."""
    dbs = SampleDatabases(new_base_name())
    try:
        dbs.create()
        yield dbs
    finally:
        dbs.drop_all()


def run_inline_project(
    tmp_path: Path,
    files: Mapping[str, str],
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, str, list[dict[str, Any]]]:
    """Writes ``files`` into a project under ``tmp_path``, runs ``python -m pytest ARGS`` there
    and returns (exit code, stdout + stderr, the JSON lines the tests wrote to ``$DZ_OUT``)."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    for name, text in files.items():
        (project / name).write_text(text)
    out = tmp_path / "events.jsonl"
    full_env = child_env({"DZ_OUT": str(out), "TMPDIR": str(tmp_path), **(env or {})})
    argv = [str(VENV_PYTHON), "-m", "pytest", "-p", "no:cacheprovider", *args]
    rc, stdout, stderr, _ = run_process(argv, full_env, project, timeout)
    events = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return rc, stdout[-6000:] + stderr[-3000:], events
