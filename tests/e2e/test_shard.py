"""`--dagz-shard K/N`: one suite across CI jobs (issue 16).

Acceptance: the sample project (48 row tests over psycopg, psycopg2, mysqlclient and PyMySQL,
plus ``test_modes.py`` with six ``dagz_main_worker`` tests) run as 3 shards x 2 workers against
the one pair of servers, one shard after the other, executes exactly the serial run's tests,
each once, all passing, every test in its worker's database (asked from the server through the
sample's events); the main-worker tests all run in shard 1 on gw0. Then the shards' traces, JUnit
XML and durations are merged with `dagz report merge`, and a second round split by those recorded
durations again covers the suite exactly once.

The small projects below (no database) check the selection itself: the CI variables, the 0-based
ones, `off`, the bad values (one line each), the durations file, and the split's balance.
"""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from dagz.shard import ShardError, parse_shard, shard_from_env, split, split_by_count
from plugin_support import (
    SampleProject,
    SampleRun,
    assert_passed,
    child_env,
    landing_problems,
    run_process,
    sample_project,
)

from support import VENV_PYTHON

ROW_FILES = (
    "test_rows_psycopg.py",
    "test_rows_psycopg2.py",
    "test_rows_mysqlclient.py",
    "test_rows_pymysql.py",
)
FILES = (*ROW_FILES, "test_modes.py")
#: 48 row tests + 6 marked + 12 unmarked + the psql child of test_modes.py
SUITE_TESTS = 48 + 6 + 12 + 1
MARKED = "test_modes.py::test_marked"


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


def _junit(run: SampleRun) -> Path:
    return Path(next(a for a in run.argv if a.startswith("--junitxml=")).split("=", 1)[1])


def _junit_ids(run: SampleRun) -> list[str]:
    """Every test case of the run's JUnit XML (duplicates kept)."""
    root = ET.parse(_junit(run)).getroot()
    return [
        f"{c.get('classname', '').replace('.', '/')}.py::{c.get('name')}"
        for c in root.iter("testcase")
    ]


def _run_shards(sample: SampleProject, tmp: Path, tag: str, durations: Path) -> list[SampleRun]:
    runs = []
    for k in (1, 2, 3):
        run = sample.run(
            "--dagz-workers",
            "2",
            f"--dagz-shard={k}/3",
            f"--dagz-trace={tmp / f'{tag}-trace{k}.json'}",
            f"--dagz-durations={durations}",
            "--dagz-store-durations",
            files=FILES,
        )
        assert_passed(run, at_least=1)
        assert f"shard {k}/3: {len(run.outcomes)} of {SUITE_TESTS} tests" in run.stdout, (
            run.describe()
        )
        assert landing_problems(run, sample.dbs.base) == [], run.describe()
        runs.append(run)
    return runs


def _check_cover(serial: SampleRun, runs: list[SampleRun]) -> None:
    """The union of the shards' tests is the serial run's, each test once."""
    executed = [nodeid for run in runs for nodeid in _junit_ids(run)]
    assert len(executed) == len(set(executed)), sorted(executed)
    assert set(executed) == set(serial.outcomes), (
        sorted(set(executed) ^ set(serial.outcomes)),
        [r.describe(2000) for r in runs],
    )
    # the marked tests all ran in shard 1, on its gw0
    marked = [e for e in runs[0].landed(MARKED)]
    assert {e["test"] for e in marked} == {n for n in serial.outcomes if n.startswith(MARKED)}
    assert {e["worker"] for e in marked} == {"gw0"}, marked
    for run in runs[1:]:
        assert run.landed(MARKED) == []


def _merge(tmp: Path, tag: str, runs: list[SampleRun], *extra: str) -> tuple[int, str, str]:
    traces = [str(tmp / f"{tag}-trace{k}.json") for k in (1, 2, 3)]
    # the files in another order: the shard numbers come from the traces themselves
    argv = [str(VENV_PYTHON), "-m", "dagz.cli", "report", "merge", *reversed(traces)]
    argv += ["-o", str(tmp / f"{tag}-merged.json"), *extra]
    rc, out, err, _ = run_process(argv, child_env(), tmp)
    return rc, out, err


def _check_trace(path: Path, runs: list[SampleRun]) -> None:
    data = json.loads(path.read_text())
    events = data["traceEvents"]
    bands = {
        e["pid"]: e["args"]["name"]
        for e in events
        if e["ph"] == "M" and e["name"] == "process_name"
    }
    want = [f"shard {k} gw{w}" for k in (1, 2, 3) for w in (0, 1)]
    assert sorted(bands.values()) == want, bands
    assert data["otherData"]["workers"] == want
    for e in events:
        assert e["ph"] in ("X", "M", "s", "f"), e
        assert e["pid"] in bands, e
        assert isinstance(e["tid"], int), e
        if e["ph"] == "X":
            assert e["ts"] >= 0, e
            assert e["dur"] >= 0, e
    tests = [e for e in events if e["ph"] == "X" and e["cat"] == "test"]
    by_shard: dict[int, set[str]] = {}
    for e in tests:
        shard = int(bands[e["pid"]].split()[1])
        by_shard.setdefault(shard, set()).add(e["args"]["nodeid"])
    for k, run in enumerate(runs, start=1):
        assert by_shard[k] == set(run.outcomes), k
    assert len(tests) == sum(len(r.outcomes) for r in runs)


def test_three_shards_run_the_suite_once(sample: SampleProject, shim: Path, tmp_path: Path) -> None:
    serial = sample.run("--dagz", files=FILES, preload=shim)
    assert_passed(serial, at_least=SUITE_TESTS)
    assert len(serial.outcomes) == SUITE_TESTS

    # round 1: no recorded durations (a stable split by test id); each shard stores its tests'
    # durations next to the file (.shard-K-of-3), which stays as the other shards read it
    joined = tmp_path / "durations.json"
    runs = _run_shards(sample, tmp_path, "r1", joined)
    _check_cover(serial, runs)
    assert all("split by test id" in r.stdout for r in runs)
    assert not joined.exists()
    stored = [tmp_path / f"durations.json.shard-{k}-of-3" for k in (1, 2, 3)]
    assert [len(json.loads(p.read_text())) for p in stored] == [len(r.outcomes) for r in runs]
    junit = tmp_path / "merged.xml"
    rc, out, err = _merge(
        tmp_path,
        "r1",
        runs,
        "--junit",
        str(junit),
        *(str(_junit(r)) for r in runs),
        "--durations",
        str(joined),
        *(str(p) for p in stored),
    )
    assert rc == 0, out + err
    _check_trace(tmp_path / "r1-merged.json", runs)
    assert f"3 shard(s), 6 worker band(s), {SUITE_TESTS} tests ({SUITE_TESTS} passed)" in out, out
    for k in (1, 2, 3):
        # the provisioning lines of each shard's run: both families, both workers
        for w in (0, 1):
            lines = [
                line
                for line in out.splitlines()
                if line.strip().startswith(f"shard {k}: ")
                and f": worker {w}: {sample.dbs.base}_jw0{w} " in line
            ]
            assert len(lines) == 2, out
    assert "more than once" not in out
    assert f"merged JUnit XML: {junit} ({SUITE_TESTS} tests, 0 failures, 0 errors, 0 skipped)" in (
        out
    )
    serial_junit = ET.parse(_junit(serial)).getroot()
    merged_junit = ET.parse(junit).getroot()
    for key in ("tests", "failures", "errors", "skipped"):
        want = sum(int(s.get(key, "0")) for s in serial_junit.iter("testsuite"))
        assert merged_junit.get(key) == str(want), key
        assert merged_junit.find("testsuite").get(key) == str(want), key  # type: ignore[union-attr]
    assert len(list(merged_junit.iter("testcase"))) == len(list(serial_junit.iter("testcase")))
    recorded = json.loads(joined.read_text())
    assert set(recorded) == set(serial.outcomes)
    assert all(isinstance(v, float) and v > 0 for v in recorded.values()), recorded

    # round 2: every shard reads the same recorded durations
    before = joined.read_text()
    runs = _run_shards(sample, tmp_path, "r2", joined)
    _check_cover(serial, runs)
    assert joined.read_text() == before
    assert all(f"split by the durations in {joined}" in r.stdout for r in runs), runs[0].stdout


# --- the selection, on a project without databases ------------------------------------------

PROJECT = """
import pytest

@pytest.mark.parametrize("i", range(20))
def test_plain(i):
    pass

@pytest.mark.dagz_main_worker
def test_main():
    pass

@pytest.mark.dagz_node_mutex
def test_mutex():
    pass
"""
ALL = {f"test_p.py::test_plain[{i}]" for i in range(20)} | {
    "test_p.py::test_main",
    "test_p.py::test_mutex",
}


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "test_p.py").write_text(textwrap.dedent(PROJECT))
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return root


def _pytest(root: Path, *args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    argv = [str(VENV_PYTHON), "-m", "pytest", "-q", "-rA", *args]
    rc, out, err, _ = run_process(argv, child_env({"TMPDIR": str(root), **(env or {})}), root)
    return rc, out, err


def _ran(out: str) -> set[str]:
    return {line.split()[1] for line in out.splitlines() if line.startswith("PASSED ")}


def test_ci_variables_name_the_shard(tmp_path: Path, shim: Path) -> None:
    root = _project(tmp_path)
    by_option = {}
    for k in (1, 2, 3):
        rc, out, err = _pytest(root, "--dagz-workers", "2", f"--dagz-shard={k}/3")
        assert rc == 0, out + err
        by_option[k] = _ran(out)
    assert set().union(*by_option.values()) == ALL
    assert sum(len(v) for v in by_option.values()) == len(ALL)
    assert {"test_p.py::test_main", "test_p.py::test_mutex"} <= by_option[1]
    variables = {
        2: {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"},
        3: {"CIRCLE_NODE_INDEX": "2", "CIRCLE_NODE_TOTAL": "3"},
        1: {"BUILDKITE_PARALLEL_JOB": "0", "BUILDKITE_PARALLEL_JOB_COUNT": "3"},
    }
    for k, env in variables.items():
        rc, out, err = _pytest(root, "--dagz-workers", "2", env=env)
        assert rc == 0, out + err
        assert _ran(out) == by_option[k], (env, out)
    # `off`, and a run without dagz, ignore the variables
    gitlab = {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}
    rc, out, err = _pytest(root, "--dagz-workers", "2", "--dagz-shard=off", env=gitlab)
    assert rc == 0, out + err
    assert _ran(out) == ALL, out
    rc, out, err = _pytest(root, "-p", "no:xdist", env=gitlab)
    assert rc == 0, out + err
    assert _ran(out) == ALL, out


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--dagz-shard=0/3"], {}, "--dagz-shard must be K/N with 1 <= K <= N"),
        (["--dagz-shard=4/3"], {}, "not '4/3'"),
        (["--dagz-shard=2"], {}, "not '2'"),
        (["--dagz-shard=a/b"], {}, "not 'a/b'"),
        ([], {"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "3"}, "GitLab: CI_NODE_INDEX='0'"),
        ([], {"CI_NODE_INDEX": "2"}, "but CI_NODE_TOTAL is not set"),
        (
            [],
            {"CIRCLE_NODE_INDEX": "3", "CIRCLE_NODE_TOTAL": "3"},
            "want 0 <= CIRCLE_NODE_INDEX <= CIRCLE_NODE_TOTAL - 1",
        ),
        (["--dagz-shard=1/2", "--dagz-durations=bad.json"], {}, "bad.json is not JSON"),
    ],
    ids=["zero", "over", "no-total", "letters", "gitlab-zero", "half", "circle-over", "bad-file"],
)
def test_bad_values_are_one_line(
    tmp_path: Path, shim: Path, args: list[str], env: dict[str, str], fragment: str
) -> None:
    root = _project(tmp_path)
    (root / "bad.json").write_text("{not json")
    rc, out, err = _pytest(root, "--dagz-workers", "2", *args, env=env)
    assert rc == pytest.ExitCode.USAGE_ERROR, out + err
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1, err
    assert errors[0].startswith("ERROR: dagz: "), err
    assert fragment in errors[0], err
    assert "Traceback" not in out + err


def test_recorded_durations_balance_the_shards(tmp_path: Path, shim: Path) -> None:
    """A file written by one run steers the next: the slow tests spread over the shards."""
    root = _project(tmp_path)
    (root / "test_p.py").write_text(
        "import time, pytest\n"
        "@pytest.mark.parametrize('i', range(12))\n"
        "def test_slow(i):\n"
        "    time.sleep(0.2 if i < 3 else 0.0)\n"
    )
    rc, out, err = _pytest(root, "--dagz-workers", "2", "--dagz-store-durations")
    assert rc == 0, out + err
    recorded = json.loads((root / ".test_durations").read_text())
    assert len(recorded) == 12
    assert all(recorded[f"test_p.py::test_slow[{i}]"] >= 0.2 for i in (0, 1, 2))
    slow_per_shard = []
    for k in (1, 2, 3):
        rc, out, err = _pytest(root, "--dagz-workers", "2", f"--dagz-shard={k}/3")
        assert rc == 0, out + err
        assert "split by the durations in .test_durations" in out, out
        slow_per_shard.append(len({f"test_p.py::test_slow[{i}]" for i in (0, 1, 2)} & _ran(out)))
    assert slow_per_shard == [1, 1, 1]


def test_split_is_stable_and_longest_first() -> None:
    ids = [f"t.py::test[{i}]" for i in range(30)]
    durations = {n: float(i % 7) for i, n in enumerate(ids)}
    a = split(ids, durations, 4)
    b = split(list(reversed(ids)), durations, 4)
    assert a.assignment == b.assignment  # the collection order does not matter
    assert sorted(a.assignment) == sorted(ids)
    assert max(a.loads) - min(a.loads) <= max(durations.values())
    # unknown tests count at the mean; no durations: a split by test id, equal in count
    c = split(ids, {}, 4)
    assert sorted(len(c.of(k)) for k in (1, 2, 3, 4)) == [7, 7, 8, 8]
    assert c.known == 0
    pinned = split(ids, durations, 3, pinned=ids[:2])
    assert pinned.assignment[ids[0]] == pinned.assignment[ids[1]] == 1
    counted = split_by_count(ids, 4)
    assert [sum(1 for v in counted.values() if v == k) for k in (1, 2, 3, 4)] == [8, 8, 7, 7]


def test_shard_parsing() -> None:
    assert str(parse_shard("2/3")) == "2/3"
    assert parse_shard("off") is None
    with pytest.raises(ShardError, match="K/N"):
        parse_shard("3/2")
    assert shard_from_env({"CIRCLE_NODE_INDEX": "0", "CIRCLE_NODE_TOTAL": "2"}).index == 1  # type: ignore[union-attr]
    assert shard_from_env({}) is None
