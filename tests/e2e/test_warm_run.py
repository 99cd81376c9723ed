"""Warm start end to end (issue 7): the sample project ``warm_project/app`` run again and again.

Each test gets its own base database name (``<run prefix>_warm_<8 hex>``) on PostgreSQL and
MariaDB, built with the sample's schema (foreign key, view, triggers, seed rows written partly by a
trigger, a migration bookkeeping table), and runs ``pytest --dagz-workers 2 -s`` on the project in
a subprocess, several times. It judges from:

* the dagz log (stderr): per worker and family ``kept (fingerprint …)`` or ``rebuilt (why)``;
* the servers: a kept PostgreSQL worker database has the same ``pg_database.oid`` as after the
  run before (a rebuild is a new CREATE DATABASE, a new oid); a kept MariaDB worker database
  has the same InnoDB table id for its table ``untouched`` (a rebuild creates the table again);
* the events of the inner run: a snapshot of each worker database right after ``worker_init``
  (rows of every table, counters, triggers, views, columns, indexes), which must equal the
  base's snapshot — a kept database shows no leftovers of the run before and exactly the base's
  seed rows — and what the tests observed (columns, indexes, defaults, migration rows);
* the per-test outcomes (JUnit XML), identical from run to run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from support import VENV_PYTHON, unique_name

APP = Path(__file__).resolve().parent / "warm_project" / "app"
if str(APP) not in sys.path:
    sys.path.insert(0, str(APP))

import warmlib  # noqa: E402

FAMILIES = ("pg", "mysql")
WORKERS = (0, 1)
INNER_TIMEOUT_S = 240.0
_STRIPPED = ("DAGZ_", "PYTEST_", "PG", "PSYCOPG_", "WARM_", "LD_PRELOAD", "LD_AUDIT", "PYTHONPATH")
_LOG_RE = re.compile(
    r"^dagz\[\d+\]: (PG_CONFIG|MYSQL_CONFIG): worker (\d+): (\S+) "
    r"(kept|rebuilt|created empty) \(([^)]*)\).* from (\S+)$",
    re.MULTILINE,
)


@pytest.fixture(scope="session", autouse=True)
def pg_databases() -> tuple[str, ...]:
    """Overrides conftest's autouse fixture: these tests use databases of their own only."""
    return ()


# --- the base databases ----------------------------------------------------------------------


class Bases:
    """The base ``name`` on both servers, its worker databases, server-side identities."""

    def __init__(self, name: str) -> None:
        self.name = name

    def worker(self, num: int) -> str:
        return f"{self.name}_jw{num:02}"

    def create(self) -> None:
        self.drop_all()
        warmlib.pg_exec("postgres", f'CREATE DATABASE "{self.name}"')
        warmlib.pg_exec(self.name, *warmlib.PG_SCHEMA)
        warmlib.my_exec(None, f"CREATE DATABASE `{self.name}`")
        warmlib.my_exec(self.name, *warmlib.MY_SCHEMA)

    def change(self, family: str, statement: str) -> None:
        if family == "pg":
            warmlib.pg_exec(self.name, statement)
        else:
            warmlib.my_exec(self.name, statement)

    def identities(self) -> dict[tuple[str, int], int | None]:
        """(family, worker) → PostgreSQL database oid / InnoDB table id of ``untouched``."""
        out: dict[tuple[str, int], int | None] = {}
        with warmlib.pg_connect("postgres") as conn:
            for num in WORKERS:
                row = conn.execute(
                    "SELECT oid::bigint FROM pg_database WHERE datname = %s", (self.worker(num),)
                ).fetchone()
                out[("pg", num)] = None if row is None else int(row[0])
        conn = warmlib.my_connect(None)
        try:
            with conn.cursor() as cur:
                for num in WORKERS:
                    cur.execute(
                        "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = %s",
                        (f"{self.worker(num)}/untouched",),
                    )
                    row = cur.fetchone()
                    out[("mysql", num)] = None if row is None else int(row[0])
        finally:
            conn.close()
        return out

    def pg_comment(self, db: str) -> str | None:
        with warmlib.pg_connect("postgres") as conn:
            row = conn.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                (db,),
            ).fetchone()
        assert row is not None, f"{db} does not exist"
        return None if row[0] is None else str(row[0])

    def my_schema(self, db: str) -> tuple[str | None, int]:
        """(comment, number of triggers) of a MariaDB database that must exist."""
        conn = warmlib.my_connect(None)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                    (db,),
                )
                row = cur.fetchone()
                assert row is not None, f"{db} does not exist"
                cur.execute(
                    "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s",
                    (db,),
                )
                (triggers,) = cur.fetchone()
        finally:
            conn.close()
        return (str(row[0]) if row[0] else None), int(triggers)

    def drop_all(self) -> None:
        like = self.name.replace("_", "\\_") + "%"
        with warmlib.pg_connect("postgres") as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (like,)
            ).fetchall()
            for (name,) in rows:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        conn = warmlib.my_connect(None)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW DATABASES LIKE %s", (like,))
                for (name,) in cur.fetchall():
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()


@pytest.fixture
def bases() -> Iterator[Bases]:
    b = Bases(unique_name("warm"))
    try:
        b.create()
        yield b
    finally:
        b.drop_all()


# --- inner runs ------------------------------------------------------------------------------


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    outcomes: dict[str, str] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"rc={self.rc} outcomes={self.outcomes}\n--- stdout ---\n{self.stdout[-6000:]}\n"
            f"--- stderr ---\n{self.stderr[-6000:]}"
        )

    def provisions(self) -> dict[tuple[str, int], tuple[str, str]]:
        """(family, worker) → (kept | rebuilt | created empty, fingerprint / reason)."""
        out = {}
        for config, worker, _target, action, why, _base in _LOG_RE.findall(self.stderr):
            family = "pg" if config == "PG_CONFIG" else "mysql"
            key = (family, int(worker))
            assert key not in out, f"two provisioning lines for {key}\n{self.describe()}"
            out[key] = (action, why.split(";")[0])
        return out

    def snapshots(self) -> dict[tuple[str, int], dict[str, Any]]:
        return {
            (e["family"], int(e["worker"][2:])): e["snapshot"]
            for e in self.events
            if e["event"] == "worker_init"
        }

    def observed(self, family: str) -> list[dict[str, Any]]:
        keys = ("status_default", "columns", "indexes", "migrations")
        return [
            {k: e[k] for k in keys}
            for e in self.events
            if e["event"] == "observed" and e["family"] == family
        ]


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED)}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "PGCONNECT_TIMEOUT": "10", **extra})
    return env


def _outcomes(junit: Path) -> dict[str, str]:
    if not junit.exists():
        return {}
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        bad = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        out[name] = bad[0] if bad else "passed"
    return out


class Project:
    """Runs the sample project against one base, each run in its own directory."""

    def __init__(self, bases: Bases, tmp: Path) -> None:
        self.bases = bases
        self.tmp = tmp
        self.count = 0

    def start(
        self, *args: str, families: str = "pg,mysql", env: Mapping[str, str] | None = None
    ) -> tuple[subprocess.Popen[str], Path]:
        self.count += 1
        run_dir = self.tmp / f"run{self.count}"
        run_dir.mkdir()
        # The run's TMPDIR: its dagz-run-* folder lands here, not in /tmp (see run_folders).
        (run_dir / "tmp").mkdir()
        extra = {
            "TMPDIR": str(run_dir / "tmp"),
            "WARM_DB": self.bases.name,
            "WARM_EVENTS": str(run_dir / "events.jsonl"),
            "WARM_FAMILIES": families,
            "WARM_BLOCK_DIR": str(run_dir),
            **(env or {}),
        }
        argv = [
            str(VENV_PYTHON),
            "-m",
            "pytest",
            "-s",
            "--dagz-workers",
            "2",
            f"--basetemp={run_dir / 'basetemp'}",
            f"--junitxml={run_dir / 'junit.xml'}",
            *args,
        ]
        proc = subprocess.Popen(
            argv,
            cwd=APP,
            env=_child_env(extra),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        return proc, run_dir

    def finish(self, proc: subprocess.Popen[str], run_dir: Path) -> Run:
        try:
            stdout, stderr = proc.communicate(timeout=INNER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            pytest.fail(f"inner run timed out\n{stdout[-4000:]}\n{stderr[-4000:]}")
        finally:
            _kill_group(proc)
        events_file = run_dir / "events.jsonl"
        events = (
            [json.loads(x) for x in events_file.read_text().splitlines() if x.strip()]
            if events_file.exists()
            else []
        )
        return Run(proc.returncode, stdout, stderr, _outcomes(run_dir / "junit.xml"), events)

    def run(self, *args: str, families: str = "pg,mysql") -> Run:
        return self.finish(*self.start(*args, families=families))


def run_folders(run_dir: Path) -> list[Path]:
    """The ``dagz-run-*`` folders (``$DAGZ_RUN_DIR`` of the controller) of a run started by
    `Project.start`: in the run's own TMPDIR."""
    return sorted((run_dir / "tmp").glob("dagz-run-*"))


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def project(bases: Bases, tmp_path: Path) -> Project:
    return Project(bases, tmp_path)


def assert_passed(run: Run) -> None:
    assert run.rc == 0, run.describe()
    assert len(run.outcomes) == 4, run.describe()
    assert set(run.outcomes.values()) == {"passed"}, run.describe()


def assert_provisioned(
    run: Run, want: Mapping[str, tuple[str, str | None]], families: tuple[str, ...] = FAMILIES
) -> None:
    """Every worker of each family was provisioned as `want[family]` says ((action, reason);
    reason None: any — for "kept" the fingerprint)."""
    got = run.provisions()
    assert set(got) == {(f, w) for f in families for w in WORKERS}, run.describe()
    for (family, worker), (action, why) in got.items():
        want_action, want_why = want[family]
        assert action == want_action, f"{family} worker {worker}: {action} ({why})\n{run.stderr}"
        if want_why is not None:
            assert why == want_why, f"{family} worker {worker}: {action} ({why})\n{run.stderr}"


def assert_copies_of_base(run: Run, bases: Bases, families: tuple[str, ...] = FAMILIES) -> None:
    """Right after worker_init every worker database held exactly what its base holds."""
    snaps = run.snapshots()
    for family in families:
        want = warmlib.snapshot(family, bases.name)
        for worker in WORKERS:
            assert snaps[(family, worker)] == want, f"{family} worker {worker}\n{run.describe()}"


# --- the tests -------------------------------------------------------------------------------


def test_second_run_keeps_every_worker_database(bases: Bases, project: Project) -> None:
    first = project.run()
    assert_passed(first)
    assert_provisioned(first, {"pg": ("rebuilt", "missing"), "mysql": ("rebuilt", "missing")})
    assert_copies_of_base(first, bases)
    ids = bases.identities()
    assert all(v is not None for v in ids.values()), ids

    second = project.run()
    assert_passed(second)
    assert_provisioned(second, {"pg": ("kept", None), "mysql": ("kept", None)})
    # No new database on either server: same oids, same InnoDB table ids.
    assert bases.identities() == ids
    # The kept databases held exactly the base's rows again (the first run's tests had left rows
    # in items/kinds/audit and advanced every counter), its triggers, views and keys.
    assert_copies_of_base(second, bases)
    assert second.snapshots() == first.snapshots()
    assert second.outcomes == first.outcomes
    for family in FAMILIES:
        assert second.observed(family) == first.observed(family)
    # The fingerprints in the log are the ones of the first run's stamps.
    for family in FAMILIES:
        stamped = {why for (f, _w), (_a, why) in second.provisions().items() if f == family}
        assert len(stamped) == 1, second.stderr
    assert "kept (fingerprint" in second.stdout  # the terminal summary says so too


def _expected(applied: set[str], family: str) -> dict[str, Any]:
    """What the tests must observe once the changes in `applied` reached the family's base."""
    columns = ["id", "kind_id", "label", "status", "label_upper"]
    if "add a column" in applied:
        columns.append("note")
    indexes = ["items_pkey"] if family == "pg" else ["PRIMARY", "items_kind"]
    if "add an index" in applied:
        indexes.append("items_label_idx")
    return {
        "status_default": "draft" if "change a default" in applied else "new",
        "columns": columns,
        "indexes": sorted(indexes),
        "migrations": ["001", "002"] if "add a migration row" in applied else ["001"],
    }


def test_base_changes_rebuild_the_affected_worker_databases(bases: Bases, project: Project) -> None:
    """Change the base between runs — a column, an index, a default, a migration row, a seed
    row, each on PostgreSQL one run before MariaDB — and the next run rebuilds exactly the
    worker databases of the family that changed, whose tests then see the change; the other
    family's are kept. ``--dagz-fresh`` rebuilds everything."""
    run = project.run()
    assert_passed(run)
    applied: dict[str, set[str]] = {"pg": set(), "mysql": set()}
    steps = len(warmlib.CHANGES) + 1
    for step in range(steps):
        ids = bases.identities()
        changed: dict[str, str | None] = {"pg": None, "mysql": None}
        if step < len(warmlib.CHANGES):
            what, pg_sql, _ = warmlib.CHANGES[step]
            bases.change("pg", pg_sql)
            changed["pg"] = what
        if step >= 1:
            what, _, my_sql = warmlib.CHANGES[step - 1]
            bases.change("mysql", my_sql)
            changed["mysql"] = what
        for family, what in changed.items():
            if what is not None:
                applied[family].add(what)
        run = project.run()
        assert_passed(run)
        want = {f: ("rebuilt", "changed") if changed[f] else ("kept", None) for f in FAMILIES}
        assert_provisioned(run, want)
        now = bases.identities()
        for (family, worker), ident in now.items():
            if changed[family]:
                assert ident != ids[(family, worker)], f"step {step}: {family} {worker} kept"
            else:
                assert ident == ids[(family, worker)], f"step {step}: {family} {worker} rebuilt"
        assert_copies_of_base(run, bases)
        for family in FAMILIES:
            want_seen = _expected(applied[family], family)
            seen = run.observed(family)
            for obs in seen:
                obs["indexes"] = sorted(obs["indexes"])
            assert seen == [want_seen] * 4, f"step {step} {family}: {seen}"
            kinds = [row[1] for row in run.snapshots()[(family, 0)]["tables"]["kinds"]]
            want_kinds = (
                ["book", "tool", "toy"] if "add a seed row" in applied[family] else ["book", "tool"]
            )
            assert kinds == want_kinds

    ids = bases.identities()
    fresh = project.run("--dagz-fresh")
    assert_passed(fresh)
    assert_provisioned(fresh, {"pg": ("rebuilt", "forced"), "mysql": ("rebuilt", "forced")})
    assert all(v != ids[k] for k, v in bases.identities().items())
    assert_copies_of_base(fresh, bases)


@pytest.mark.parametrize("family", FAMILIES)
def test_run_killed_in_worker_init_is_rebuilt(bases: Bases, project: Project, family: str) -> None:
    """SIGKILL a run while both workers are inside worker_init — PostgreSQL: the copy created,
    not stamped; MariaDB: tables and rows copied, views and triggers not yet — and the next run
    rebuilds both worker databases ("incomplete"), never using the half-built ones."""
    proc, run_dir = project.start(families=family, env={"WARM_BLOCK": family})
    markers = [run_dir / f"blocked-gw{w}-{family}" for w in WORKERS]
    deadline = time.monotonic() + 120
    try:
        while not all(m.exists() for m in markers):
            if proc.poll() is not None or time.monotonic() > deadline:
                _kill_group(proc)
                out, err = proc.communicate()
                pytest.fail(f"the run did not block in worker_init\n{out[-4000:]}\n{err[-4000:]}")
            time.sleep(0.1)
        # Half-built, on the server: no final stamp.
        for w in WORKERS:
            db = bases.worker(w)
            if family == "pg":
                assert bases.pg_comment(db) is None
            else:
                comment, triggers = bases.my_schema(db)
                assert comment is not None
                assert " building since=" in comment
                assert triggers == 0
    finally:
        _kill_group(proc)
        proc.communicate()
        # A killed controller cannot remove its DAGZ_RUN_DIR: this test does.
        killed_run_folders = run_folders(run_dir)
        for folder in killed_run_folders:
            shutil.rmtree(folder, ignore_errors=True)
    assert proc.returncode == -signal.SIGKILL
    # The killed run had made its folder in its own TMPDIR (never in the machine's /tmp), and it
    # is gone now.
    assert len(killed_run_folders) == 1, killed_run_folders
    assert run_folders(run_dir) == []

    families = (family,)
    rerun = project.run(families=family)
    assert_passed(rerun)
    assert_provisioned(rerun, {family: ("rebuilt", "incomplete")}, families)
    assert_copies_of_base(rerun, bases, families)
    ids = bases.identities()

    again = project.run(families=family)
    assert_passed(again)
    assert_provisioned(again, {family: ("kept", None)}, families)
    assert bases.identities() == ids
    assert_copies_of_base(again, bases, families)
