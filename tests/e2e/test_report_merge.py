"""`dagz report merge`: the shards' traces, JUnit XML and durations as one (issue 16).

The inputs are what real runs wrote: a small project (no database; passing, failing, skipped,
xfailed tests and a setup error) run serially and as 2 shards x 2 workers with ``--dagz-trace``
and ``--junitxml``. The checks: one band per shard and worker, named and numbered apart, on one
clock; the merged JUnit counts equal the serial run's; a test found in two inputs is reported;
the flow ids of two files do not collide; bad inputs are one line each.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from plugin_support import child_env, run_process

from support import VENV_PYTHON

PROJECT = """
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("setup fails")

@pytest.mark.parametrize("i", range(8))
def test_ok(i):
    pass

@pytest.mark.parametrize("i", range(3))
def test_fails(i):
    assert i < 0

def test_skipped():
    pytest.skip("not here")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

def test_error(broken):
    pass
"""
TESTS = 8 + 3 + 1 + 1 + 1


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "test_m.py").write_text(textwrap.dedent(PROJECT))
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return root


def _run(cwd: Path, *argv: str) -> tuple[int, str, str]:
    rc, out, err, _ = run_process(list(argv), child_env({"TMPDIR": str(cwd)}), cwd)
    return rc, out, err


def _pytest(root: Path, *args: str) -> tuple[int, str, str]:
    return _run(root, str(VENV_PYTHON), "-m", "pytest", "-q", "-o", "junit_family=xunit2", *args)


def _merge(root: Path, *args: str) -> tuple[int, str, str]:
    return _run(root, str(VENV_PYTHON), "-m", "dagz.cli", "report", "merge", *args)


def _bands(trace: dict[str, Any]) -> dict[int, str]:
    return {
        e["pid"]: e["args"]["name"]
        for e in trace["traceEvents"]
        if e["ph"] == "M" and e["name"] == "process_name"
    }


def _counts(path: Path) -> dict[str, int]:
    suites = list(ET.parse(path).getroot().iter("testsuite"))
    return {
        k: sum(int(s.get(k, "0")) for s in suites)
        for k in ("tests", "failures", "errors", "skipped")
    }


def test_merge_of_two_shards(project: Path, shim: Path) -> None:
    rc, out, err = _pytest(project, "--junitxml=serial.xml")
    assert rc == 1, out + err
    for k in (1, 2):
        rc, out, err = _pytest(
            project,
            "--dagz-workers",
            "2",
            f"--dagz-shard={k}/2",
            f"--dagz-trace=t{k}.json",
            f"--junitxml=j{k}.xml",
        )
        assert rc in (0, 1), out + err
        assert (project / f"t{k}.json").exists(), out + err
    rc, out, err = _merge(
        project, "t2.json", "t1.json", "-o", "m.json", "--junit", "m.xml", "j1.xml", "j2.xml"
    )
    assert rc == 0, out + err
    trace = json.loads((project / "m.json").read_text())
    bands = _bands(trace)
    assert sorted(bands.values()) == ["shard 1 gw0", "shard 1 gw1", "shard 2 gw0", "shard 2 gw1"]
    assert len(set(bands)) == 4
    # pids: the bands' own, sort indexes follow them
    for e in trace["traceEvents"]:
        assert e["pid"] in bands, e
        if e["ph"] == "M" and e["name"] == "process_sort_index":
            assert e["args"]["sort_index"] == e["pid"]
    # one clock: shard 2 ran after shard 1 (one after the other above)
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    end_1 = max(e["ts"] + e["dur"] for e in spans if bands[e["pid"]].startswith("shard 1 "))
    start_2 = min(e["ts"] for e in spans if bands[e["pid"]].startswith("shard 2 "))
    assert start_2 >= end_1, (start_2, end_1)
    tests = [e for e in spans if e["cat"] == "test"]
    assert len(tests) == TESTS
    assert len({e["args"]["nodeid"] for e in tests}) == TESTS
    assert f"2 shard(s), 4 worker band(s), {TESTS} tests" in out, out
    assert "3 failed" in out, out
    assert "more than once" not in out
    assert _counts(project / "m.xml") == _counts(project / "serial.xml")
    serial_cases = len(list(ET.parse(project / "serial.xml").getroot().iter("testcase")))
    assert len(list(ET.parse(project / "m.xml").getroot().iter("testcase"))) == serial_cases

    # the same shard twice: the numbers come from the argument order, and the duplicates show
    rc, out, err = _merge(project, "t1.json", "t1.json", "-o", "twice.json")
    assert rc == 0, out + err
    assert sorted(_bands(json.loads((project / "twice.json").read_text())).values()) == [
        "shard 1 gw0",
        "shard 1 gw1",
        "shard 2 gw0",
        "shard 2 gw1",
    ]
    assert "WARNING:" in out
    assert "ran more than once" in out, out


def _synthetic(path: Path, t0: int, lane: str) -> None:
    """A trace as `dagz.trace.chrome` writes it, with one cross-thread flow (id 7)."""
    events = [
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": f"dagz {lane}"}},
        {"ph": "X", "name": "t.py::a", "cat": "test", "ts": 0, "dur": 10, "pid": 1, "tid": 1,
         "args": {"nodeid": "t.py::a" + lane, "outcome": "passed"}},
        {"ph": "s", "name": "parent", "cat": "otel.link", "id": 7, "pid": 1, "tid": 1, "ts": 1},
        {"ph": "f", "name": "parent", "cat": "otel.link", "id": 7, "pid": 1, "tid": 2, "ts": 2,
         "bp": "e"},
    ]  # fmt: skip
    other = {"generator": "dagz", "t0_unix_ns": t0, "workers": [lane]}
    path.write_text(json.dumps({"traceEvents": events, "otherData": other}))


def test_flow_ids_and_clocks(tmp_path: Path) -> None:
    _synthetic(tmp_path / "a.json", 1_000_000_000, "gw0")
    _synthetic(tmp_path / "b.json", 1_000_500_000, "gw0")  # 500 µs later
    rc, out, err = _merge(tmp_path, "a.json", "b.json", "-o", "m.json")
    assert rc == 0, out + err
    events = json.loads((tmp_path / "m.json").read_text())["traceEvents"]
    flows = [(e["pid"], e["id"]) for e in events if e["ph"] in ("s", "f")]
    assert len({i for _, i in flows}) == 2, flows  # one id per file, not shared
    tests = sorted((e["pid"], e["ts"]) for e in events if e["ph"] == "X")
    assert tests == [(1, 0), (2, 500.0)]


def test_durations_join_keeps_the_output(tmp_path: Path) -> None:
    (tmp_path / "d").write_text(json.dumps({"a": 1.0, "b": 2.0}))
    (tmp_path / "d1").write_text(json.dumps({"b": 3.0}))
    (tmp_path / "d2").write_text(json.dumps([["c", 4.0]]))  # pytest-split's old format
    rc, out, err = _merge(tmp_path, "--durations", "d", "d1", "d2")
    assert rc == 0, out + err
    assert json.loads((tmp_path / "d").read_text()) == {"a": 1.0, "b": 3.0, "c": 4.0}


@pytest.mark.parametrize(
    ("files", "args", "fragment"),
    [
        ({}, ["missing.json", "-o", "m.json"], "trace missing.json: no such file"),
        ({"x.json": "{"}, ["x.json", "-o", "m.json"], "trace x.json: not readable JSON"),
        ({"x.json": "[]"}, ["x.json", "-o", "m.json"], "not a Chrome Trace Event file"),
        ({"x.json": '{"traceEvents": []}'}, ["x.json"], "give the merged trace's path with -o"),
        ({}, [], "nothing to merge"),
        ({}, ["--junit", "out.xml"], "--junit takes OUT and at least one input"),
        ({"j.xml": "<a/>"}, ["--junit", "o.xml", "j.xml"], "root <a> is neither"),
        ({"j.xml": "<a"}, ["--junit", "o.xml", "j.xml"], "j.xml: not readable XML"),
        ({"d.json": "{"}, ["--durations", "o.json", "d.json"], "d.json is not JSON"),
    ],
    ids=["missing", "not-json", "not-trace", "no-output", "nothing", "junit-one", "junit-root",
         "junit-xml", "durations"],
)  # fmt: skip
def test_bad_input_is_one_line(
    tmp_path: Path, files: dict[str, str], args: list[str], fragment: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    rc, out, err = _merge(tmp_path, *args)
    assert rc == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dagz: error: "), err
    assert fragment in lines[0], err
    assert not (tmp_path / "m.json").exists()
