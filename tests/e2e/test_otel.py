"""dagz.otel end to end: the otel_project sample (tests/e2e/otel_project) run by a child pytest
with the real OpenTelemetry SDK and instrumentations (psycopg2, requests), real PostgreSQL, and
`--dagz-workers 2 --dagz-trace=...` (the shim preloaded into the xdist workers).

The project's files are copied into a temporary directory under their pytest names, so the
outer suite never collects them; each run uses its own database names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from support import VENV_PYTHON, Admin, Launcher, unique_name

PROJECT = Path(__file__).resolve().parent / "otel_project"
#: Repository name → name in the child's project directory.
PROJECT_FILES = {"project_conftest.py": "conftest.py", "project_test_app.py": "test_app.py"}
RUN_TIMEOUT_S = 180.0
#: The multiplication sign of the summary (as in "psycopg2.SELECT", sign, "3").
TIMES = "\u00d7"
#: Allowed slack when comparing µs timestamps that were rounded to 3 decimals.
EPS_US = 0.01
#: Tests of the project that the --dagz-workers run skips (their knob is not set).
SKIPPED_IN_WORKERS_RUN = {
    "test_late_provider",
    "test_configure_was_a_noop",
    "test_fails_on_purpose",
}
_VERBOSE_LINE = re.compile(
    r"^\[(gw\d+)\] \[\s*\d+%\] (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS) (\S+)", re.MULTILINE
)


@dataclass(frozen=True)
class Run:
    rc: int
    stdout: str
    stderr: str
    directory: Path

    def describe(self) -> str:
        return f"rc={self.rc}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


def make_project(directory: Path, extra: Mapping[str, str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for src, dst in PROJECT_FILES.items():
        shutil.copyfile(PROJECT / src, directory / dst)
    (directory / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    for name, text in (extra or {}).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


def child_env(launcher: Launcher, shim: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The outer run's environment minus PYTEST_*/DAGZ_*/PG*/LD_PRELOAD (Launcher.env) and any
    OTEL_* setting, plus the shim's path and `extra`."""
    env = launcher.env(preload=False)
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    env["DAGZ_SHIM"] = str(shim)
    env.update(extra)
    return env


def run_pytest(
    launcher: Launcher, shim: Path, directory: Path, args: list[str], extra_env: Mapping[str, str]
) -> Run:
    # The run's TMPDIR is its own (a dagz-run-* folder lands there, never in /tmp).
    tmp = directory / ".tmp"
    tmp.mkdir(exist_ok=True)
    proc = subprocess.run(
        [str(VENV_PYTHON), "-m", "pytest", *args],
        cwd=directory,
        env=child_env(launcher, shim, {"TMPDIR": str(tmp), **extra_env}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, directory)


def drop_databases(admin: Admin, base: str) -> None:
    rows = admin.conn.execute(
        "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
        (base, base + r"\_jw%"),
    ).fetchall()
    for (name,) in rows:
        admin.conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# -- the Trace Event format ------------------------------------------------------------------

_METADATA = {"process_name", "process_sort_index", "thread_name", "thread_sort_index"}


def check_trace_schema(doc: object) -> list[dict[str, Any]]:
    """A hand-written check of the Trace Event format as dagz writes it (JSON object form):
    ``{"traceEvents": [...]}``; every event has a one-letter ``ph``, a ``name`` and integer
    ``pid``/``tid``; complete events ``ph: "X"`` have numeric ``ts``/``dur`` (µs, ≥ 0) and
    ``args``; metadata events ``ph: "M"`` name processes and threads; flow events ``"s"``/``"f"``
    come in pairs with an ``id`` and a ``ts``. Complete events on one (pid, tid) nest strictly,
    as a viewer needs. Returns the complete events."""
    assert isinstance(doc, dict), type(doc)
    events = doc.get("traceEvents")
    assert isinstance(events, list), "traceEvents must be a list"
    assert doc.get("displayTimeUnit") in (None, "ms", "ns")
    complete: list[dict[str, Any]] = []
    flows: dict[int, list[str]] = {}
    for e in events:
        assert isinstance(e, dict), e
        ph = e.get("ph")
        assert ph in ("X", "M", "s", "f"), e
        assert isinstance(e.get("name"), str), e
        assert e["name"], e
        for key in ("pid", "tid"):
            assert isinstance(e.get(key), int), e
            assert not isinstance(e[key], bool), e
        assert isinstance(e.get("args", {}), dict), e
        if ph in ("X", "s", "f"):
            keys = ("ts", "dur") if ph == "X" else ("ts",)
            for key in keys:
                assert isinstance(e.get(key), (int, float)), e
                assert not isinstance(e[key], bool), e
                assert e[key] >= 0, e
        if ph == "X":
            assert isinstance(e.get("args"), dict), e
            complete.append(e)
        elif ph == "M":
            assert e["name"] in _METADATA, e
            assert isinstance(e.get("args"), dict), e
        else:
            assert isinstance(e.get("id"), int), e
            flows.setdefault(e["id"], []).append(ph)
    assert all(sorted(phs) == ["f", "s"] for phs in flows.values()), flows
    # strict nesting per track
    tracks: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for e in complete:
        tracks.setdefault((e["pid"], e["tid"]), []).append(e)
    for track, evs in tracks.items():
        stack: list[float] = []
        for e in sorted(evs, key=lambda e: (e["ts"], -e["dur"])):
            end = e["ts"] + e["dur"]
            while stack and stack[-1] <= e["ts"] + EPS_US:
                stack.pop()
            assert not stack or end <= stack[-1] + EPS_US, f"overlap on track {track}: {e}"
            stack.append(end)
    return complete


def lanes_of(doc: Mapping[str, Any]) -> dict[int, str]:
    return {
        e["pid"]: e["args"]["name"]
        for e in doc["traceEvents"]
        if e["ph"] == "M" and e["name"] == "process_name"
    }


# -- the --dagz-workers 2 run ------------------------------------------------------------------


@dataclass(frozen=True)
class WorkersRun:
    run: Run
    trace: dict[str, Any]
    events: list[dict[str, Any]]
    db: str

    def tests(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["cat"] == "test"]

    def test_event(self, name: str) -> dict[str, Any]:
        found = [e for e in self.tests() if e["args"]["test"].endswith(f"::{name}")]
        assert len(found) == 1, (name, found)
        return found[0]

    def sub_spans(self, test: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["cat"] == "otel"
            and e["pid"] == test["pid"]
            and e["args"].get("test") == test["args"]["test"]
        ]

    def child_of(self, test: dict[str, Any], cat: str) -> dict[str, Any]:
        found = [
            e
            for e in self.events
            if e["cat"] == cat and e["args"].get("parent") == test["args"]["id"]
        ]
        assert len(found) == 1, (cat, found)
        return found[0]


@pytest.fixture(scope="module")
def workers_run(
    launcher: Launcher, shim: Path, admin: Admin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkersRun]:
    db = unique_name("otel")
    directory = make_project(tmp_path_factory.mktemp("otel_workers"))
    try:
        run = run_pytest(
            launcher,
            shim,
            directory,
            ["-v", "-rA", "--dagz-workers", "2", "--dagz-trace=t.json"],
            {"OTEL_E2E_DB": db, "OTEL_E2E_MODE": "full"},
        )
        assert run.rc == 0, run.describe()
        path = directory / "t.json"
        assert path.exists(), run.describe()
        trace = json.loads(path.read_text())
        events = check_trace_schema(trace)
        yield WorkersRun(run, trace, events, db)
    finally:
        drop_databases(admin, db)


def test_trace_holds_every_test_of_both_workers_once(workers_run: WorkersRun) -> None:
    run = workers_run.run
    reported = {m.group(3): m.group(1) for m in _VERBOSE_LINE.finditer(run.stdout)}
    assert len(reported) == 14, run.describe()
    assert set(reported.values()) == {"gw0", "gw1"}, run.describe()
    lanes = lanes_of(workers_run.trace)
    assert sorted(lanes.values()) == ["dagz gw0", "dagz gw1"], lanes
    counts = Counter(e["args"]["test"] for e in workers_run.tests())
    assert counts == Counter(dict.fromkeys(reported, 1)), (counts, reported)
    for e in workers_run.tests():
        nodeid = e["args"]["test"]
        assert lanes[e["pid"]] == f"dagz {reported[nodeid]}", (e, reported[nodeid])
        assert e["name"] == nodeid
        # setup, test.call and teardown are children of the test, inside its time range
        skipped = e["args"]["outcome"] == "skipped"
        assert skipped == (nodeid.split("::")[-1] in SKIPPED_IN_WORKERS_RUN), e
        for cat in ("setup", "teardown") if skipped else ("setup", "call", "teardown"):
            phase = workers_run.child_of(e, cat)
            assert phase["ts"] >= e["ts"] - EPS_US
            assert phase["ts"] + phase["dur"] <= e["ts"] + e["dur"] + EPS_US
        # every sub-span lies inside its test's time range
        for s in workers_run.sub_spans(e):
            assert s["ts"] >= e["ts"] - EPS_US, (s, e)
            assert s["ts"] + s["dur"] <= e["ts"] + e["dur"] + EPS_US, (s, e)
    # every session of a worker holds its tests
    sessions = [s for s in workers_run.events if s["cat"] == "session"]
    assert len(sessions) == 2, sessions
    for e in workers_run.tests():
        (session,) = [s for s in sessions if s["pid"] == e["pid"]]
        assert e["args"]["parent"] == session["args"]["id"]


def test_sub_spans_of_queries_and_http(workers_run: WorkersRun) -> None:
    test = workers_run.test_event("test_queries_and_http")
    call = workers_run.child_of(test, "call")
    subs = workers_run.sub_spans(test)
    in_call = [s for s in subs if s["args"].get("parent") == call["args"]["id"]]
    types = Counter(s["args"]["otel_type"] for s in in_call)
    assert types == Counter({"psycopg2.SELECT": 3, "requests.GET": 1}), in_call
    for s in in_call:
        assert s["args"]["result"] == "OK", s
        assert s["tid"] == call["tid"], (s, call)  # the test's own thread
    (get,) = [s for s in in_call if s["args"]["otel_type"] == "requests.GET"]
    assert get["args"]["http.url"].endswith("/hello"), get
    assert "@" not in get["args"]["http.url"]
    # the server's span: from the server's request thread, a child of the client's GET
    (server,) = [s for s in subs if s["args"]["otel_type"] == "httpserver.GET"]
    assert server["args"]["parent"] == get["args"]["id"], server
    assert server["args"]["thread"] != "MainThread", server
    assert server["tid"] != get["tid"], (server, get)
    assert get["ts"] <= server["ts"], (get, server)
    # a flow arrow links them across the two threads
    flows = [
        e
        for e in workers_run.trace["traceEvents"]
        if e["ph"] in ("s", "f") and e["pid"] == server["pid"]
    ]
    ends = {(e["ph"], e["tid"]) for e in flows}
    assert ("s", get["tid"]) in ends, flows
    assert ("f", server["tid"]) in ends, flows
    assert server["ts"] + server["dur"] <= get["ts"] + get["dur"] + EPS_US, (get, server)
    # statements are kept; the database carries its logical and physical names
    statements = [s["args"]["db.statement"] for s in in_call if "db.statement" in s["args"]]
    assert statements == [
        "SELECT 1",
        "SELECT current_database()",
        "SELECT count(*) FROM pg_class WHERE relname = %s",
    ]
    worker = re.search(r"dagz (gw\d+)", lanes_of(workers_run.trace)[test["pid"]])
    assert worker is not None
    physical = f"{workers_run.db}_jw{int(worker.group(1)[2:]):02d}"
    for s in in_call:
        if s["args"]["otel_type"] == "psycopg2.SELECT":
            assert s["args"]["dagz.db.logical"] == workers_run.db, s
            assert s["args"]["dagz.db.physical"] == physical, s
    assert f"current_database={physical}" in workers_run.run.stdout


def test_failing_query_sub_span_is_an_error(workers_run: WorkersRun) -> None:
    test = workers_run.test_event("test_failing_query")
    assert test["args"]["result"] == "OK"  # the test itself passed (pytest.raises)
    call = workers_run.child_of(test, "call")
    (failed,) = [
        s for s in workers_run.sub_spans(test) if s["args"].get("parent") == call["args"]["id"]
    ]
    assert failed["args"]["otel_type"] == "psycopg2.SELECT"
    assert failed["args"]["result"] == "ERROR", failed
    assert "dagz_no_such_table" in failed["args"]["db.statement"]
    assert "UndefinedTable" in failed["args"].get("exception.type", ""), failed


def test_terminal_summary_lists_slowest_tests(workers_run: WorkersRun) -> None:
    out = workers_run.run.stdout
    assert "dagz otel" in out, out
    assert re.search(r"14 tests on 2 worker\(s\)", out), out
    line = next(ln for ln in out.splitlines() if "test_queries_and_http [gw" in ln)
    assert re.search(rf"5 sub-spans: .*requests\.GET {TIMES}1", line), line
    assert f"psycopg2.SELECT {TIMES}3" in line, line
    assert f"httpserver.GET {TIMES}1" in line, line
    assert "t.json" in out
    assert "perfetto" in out.lower()


# -- configure() semantics ---------------------------------------------------------------------


def test_configure_is_a_noop_without_the_plugin(launcher: Launcher, shim: Path) -> None:
    """A plain python process: nothing changes (no provider set, nothing patched)."""
    code = """
import os, dagz.otel
from opentelemetry import trace
original = trace.set_tracer_provider
dagz.otel.configure(dd=False)
dagz.otel.configure(dd=False, start_provider=True, auto_instrument=True)
print("proxy=" + str(isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)))
print("patched=" + str(trace.set_tracer_provider is not original))
print("env=" + os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", ""))
print("configured=" + str(dagz.otel.is_configured()))
import dagz.integ.otel
print("same=" + str(dagz.integ.otel is dagz.otel))
"""
    proc = subprocess.run(
        [str(VENV_PYTHON), "-c", code],
        env=child_env(launcher, shim, {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    kv = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert kv == {
        "proxy": "True",
        "patched": "False",
        "env": "",
        "configured": "False",
        "same": "True",
    }, proc.stdout


def test_configure_is_a_noop_in_pytest_without_dagz(
    launcher: Launcher, shim: Path, tmp_path: Path
) -> None:
    directory = make_project(tmp_path / "proj")
    run = run_pytest(
        launcher,
        shim,
        directory,
        ["-rA", "-p", "no:xdist"],
        {"OTEL_E2E_MODE": "full", "OTEL_E2E_EXPECT_INACTIVE": "1"},
    )
    assert run.rc == 0, run.describe()
    assert "PASSED test_app.py::test_configure_was_a_noop" in run.stdout, run.describe()
    assert "dagz otel" not in run.stdout
    # Asking for a trace without dagz active is a usage error, not a silently missing file.
    refused = run_pytest(
        launcher,
        shim,
        directory,
        ["-p", "no:xdist", "--dagz-trace=t.json"],
        {"OTEL_E2E_MODE": "full", "OTEL_E2E_EXPECT_INACTIVE": "1"},
    )
    assert refused.rc == 4, refused.describe()
    assert "--dagz-trace needs dagz active" in refused.stderr, refused.describe()
    assert not (directory / "t.json").exists()


def test_configure_requires_dd(launcher: Launcher, shim: Path) -> None:
    code = """
import dagz.otel
try:
    dagz.otel.configure()
except TypeError as exc:
    print("missing=" + str(exc))
try:
    dagz.otel.configure(dd=True)
except ValueError as exc:
    print("dd_true=" + str(exc))
"""
    proc = subprocess.run(
        [str(VENV_PYTHON), "-c", code],
        env=child_env(launcher, shim, {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    kv = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert "'dd'" in kv["missing"], proc.stdout
    assert "not supported" in kv["dd_true"], proc.stdout


def test_dd_true_raises_when_ddtrace_is_importable(
    launcher: Launcher, shim: Path, tmp_path: Path
) -> None:
    stub = tmp_path / "stubs"
    (stub / "ddtrace").mkdir(parents=True)
    (stub / "ddtrace" / "__init__.py").write_text('"""A stand-in: only importable."""\n')
    directory = make_project(tmp_path / "proj")
    run = run_pytest(
        launcher,
        shim,
        directory,
        ["--dagz", "-p", "no:xdist"],
        {"OTEL_E2E_MODE": "dd_true", "PYTHONPATH": str(stub)},
    )
    assert run.rc != 0, run.describe()
    text = run.stdout + run.stderr
    assert "ValueError" in text, run.describe()
    assert "ddtrace is importable" in text, run.describe()


def test_provider_set_after_configure_feeds_dagz(
    launcher: Launcher, shim: Path, tmp_path: Path
) -> None:
    """configure(start_provider=False): no provider until a test sets one; that one is fed to
    dagz. Single process (--dagz), with a failing test for the test span's result."""
    directory = make_project(tmp_path / "proj")
    run = run_pytest(
        launcher,
        shim,
        directory,
        ["-rA", "--dagz", "-p", "no:xdist", "--dagz-trace=out/t.json"],
        {"OTEL_E2E_MODE": "late_provider", "OTEL_E2E_WITH_FAILURE": "1"},
    )
    assert run.rc == 1, run.describe()
    assert "1 failed" in run.stdout, run.describe()
    trace = json.loads((directory / "out" / "t.json").read_text())
    events = check_trace_schema(trace)
    assert list(lanes_of(trace).values()) == ["dagz main"]
    otel = [e for e in events if e["cat"] == "otel"]
    by_test = {e["args"]["test"].split("::")[-1]: e for e in otel}
    # before the provider was set, the manual span went nowhere; the late one is recorded
    assert "test_manual_span" not in by_test, otel
    assert by_test["test_late_provider"]["args"]["otel_type"] == "late.late-work", otel
    assert by_test["test_fails_on_purpose"]["args"]["otel_type"] == "manual.before-failure"
    failed = next(e for e in events if e["cat"] == "test" and "fails_on_purpose" in e["name"])
    assert failed["args"]["result"] == "ERROR", failed
    assert failed["args"]["outcome"] == "failed", failed
    skipped = next(e for e in events if e["cat"] == "test" and "test_many[0]" in e["name"])
    assert skipped["args"]["outcome"] == "skipped", skipped
    assert skipped["args"]["result"] == "OK", skipped


# -- the span model, in process ----------------------------------------------------------------


def test_processor_never_raises_into_the_application() -> None:
    from dagz import trace as _trace  # noqa: PLC0415 - the package under test, imported late on purpose
    from dagz.otel import SPAN_PROCESSOR  # noqa: PLC0415

    recorder = _trace.Recorder("unit", 0)
    _trace.install(recorder)
    try:
        SPAN_PROCESSOR.on_start(object())  # type: ignore[arg-type]
        SPAN_PROCESSOR.on_end(object())  # type: ignore[arg-type]
        recorder.drain()
        assert recorder.convert_errors == 1
        assert recorder.otel_count == 0
        recorder.pending = None  # type: ignore[assignment]  # a broken recorder
        SPAN_PROCESSOR.on_end(object())  # type: ignore[arg-type]
    finally:
        _trace.install(None)
    assert SPAN_PROCESSOR.force_flush() is True
