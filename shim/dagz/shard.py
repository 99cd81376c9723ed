"""One suite across CI jobs: `--dagz-shard K/N`, the split by measured durations, and the
durations file.

* **Which shard.** `--dagz-shard K/N` (K counts from 1, as GitLab's `CI_NODE_INDEX` does), else
  — when dagz is active — the CI's own variables: GitLab `CI_NODE_INDEX`/`CI_NODE_TOTAL`,
  CircleCI `CIRCLE_NODE_INDEX`/`CIRCLE_NODE_TOTAL` (0-based), Buildkite
  `BUILDKITE_PARALLEL_JOB`/`BUILDKITE_PARALLEL_JOB_COUNT` (0-based). `--dagz-shard off` ignores
  the variables (a GitLab `parallel: matrix:` job sets `CI_NODE_INDEX` too).
* **Which tests.** Every shard collects the whole suite and keeps its part, in
  `pytest_collection_modifyitems` (after `-k`/`-m`): a pure function of the collected node ids,
  their markers and the durations file, so every xdist worker of a shard keeps the same tests and
  the shards together keep each test exactly once.
* **Balanced.** Longest processing time first: tests by recorded duration, longest first, each
  to the shard with the least time so far (ties: the lower shard). A test without a recorded
  duration counts as the mean of the recorded ones; with no durations at all every test weighs
  the same and the order is a stable hash of the node id (a stable split by test id).
* **Pinned.** `dagz_main_worker` and `dagz_node_mutex` tests all run in shard 1: there they keep
  their meaning (gw0 only; no other test of the run at the same time). A node-mutex test does not
  exclude the tests of the other shards, which run on other machines at the same time.
* **Durations.** pytest-split's format (`.test_durations`: a JSON object, node id → seconds of
  setup + call + teardown), so its tools and a committed or CI-cached file work as they are. Read
  from `--dagz-durations PATH` (default: `.test_durations` in the rootdir). Every run measures
  them; `--dagz-store-durations` writes them: an unsharded run into PATH (its tests updated, the
  others kept), shard K of N into `PATH.shard-K-of-N` — never into the file the other shards
  split by, or a later shard would split differently and run or skip another shard's tests.
  `dagz report merge --durations PATH PATH.shard-*` joins them into PATH for the next run.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: Markers whose tests all run in shard 1.
PINNED_MARKERS = ("dagz_main_worker", "dagz_node_mutex")
DEFAULT_DURATIONS = ".test_durations"
#: Key of a worker's shard report in `config.workeroutput`.
WORKEROUTPUT_KEY = "dagz_shard"

#: (CI name, index variable, total variable, first index)
CI_VARIABLES = (
    ("GitLab", "CI_NODE_INDEX", "CI_NODE_TOTAL", 1),
    ("CircleCI", "CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL", 0),
    ("Buildkite", "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),
)


class ShardError(ValueError):
    """Bad shard or durations input: one line naming what is wrong and what to do."""


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    total: int
    source: str  # where it came from, for the header

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def parse_shard(text: str, source: str = "--dagz-shard") -> Shard | None:
    """`K/N` → Shard(K, N); `off` → None."""
    value = text.strip()
    if value.lower() == "off":
        return None
    k, sep, n = value.partition("/")
    if not (sep and k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise ShardError(
            f"{source} must be K/N with 1 <= K <= N (shard K of N, counting from 1, "
            f"e.g. 2/3) or 'off', not {text!r}"
        )
    return Shard(int(k), int(n), source)


def shard_from_env(env: Mapping[str, str]) -> Shard | None:
    """The shard the CI's variables name (the first CI whose index variable is set)."""
    for ci, index_var, total_var, first in CI_VARIABLES:
        index, total = env.get(index_var, "").strip(), env.get(total_var, "").strip()
        if not index and not total:
            continue
        if not index or not total:
            missing = index_var if not index else total_var
            raise ShardError(
                f"{ci}: {index_var} and {total_var} come together, but {missing} is not set: "
                "set both, or pass --dagz-shard K/N (or --dagz-shard off)"
            )
        last = int(total) - 1 + first if total.isdigit() else -1
        if not (index.isdigit() and total.isdigit() and first <= int(index) <= last):
            raise ShardError(
                f"{ci}: {index_var}={index!r} {total_var}={total!r} is no shard: want "
                f"{first} <= {index_var} <= {total_var}{' - 1' if first == 0 else ''}; pass "
                "--dagz-shard K/N (or --dagz-shard off) to override"
            )
        return Shard(int(index) - first + 1, int(total), f"{ci} {index_var}/{total_var}")
    return None


def resolve_shard(option: str | None, env: Mapping[str, str], *, read_env: bool) -> Shard | None:
    """`--dagz-shard` wins; else the CI variables (when `read_env`). A 1/1 split is no split."""
    shard = parse_shard(option) if option is not None else None
    if option is None and read_env:
        shard = shard_from_env(env)
    return shard if shard is not None and shard.total > 1 else None


# -- durations ----------------------------------------------------------------------------------


def load_durations(path: Path) -> dict[str, float]:
    """pytest-split's `.test_durations` (an object node id → seconds; its old format, a list of
    [node id, seconds] pairs, too). A missing file is no durations."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ShardError(f"durations file {path}: cannot read it ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ShardError(
            f"durations file {path} is not JSON ({exc}): delete it or record it again "
            "with --dagz-store-durations"
        ) from None
    pairs: Iterable[Any]
    if isinstance(data, dict):
        pairs = data.items()
    elif isinstance(data, list):
        pairs = (p for p in data if isinstance(p, list) and len(p) == 2)
    else:
        raise ShardError(
            f"durations file {path}: want a JSON object of node id -> seconds "
            "(pytest-split's .test_durations), found "
            f"{type(data).__name__}"
        )
    out: dict[str, float] = {}
    for nodeid, seconds in pairs:
        if isinstance(nodeid, str) and isinstance(seconds, int | float) and seconds >= 0:
            out[nodeid] = float(seconds)
    return out


def write_durations(path: Path, durations: Mapping[str, float]) -> None:
    """Atomically, sorted, one test a line (diffs of a committed file stay readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    ordered = {k: round(durations[k], 6) for k in sorted(durations)}
    tmp.write_text(json.dumps(ordered, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def store_durations(path: Path, measured: Mapping[str, float]) -> int:
    """The run's measured tests updated in the file, the others kept; returns the count."""
    merged = load_durations(path)
    merged.update(measured)
    write_durations(path, merged)
    return len(measured)


# -- the split ----------------------------------------------------------------------------------


def _stable_key(nodeid: str) -> str:
    """A process-independent order of node ids (Python's hash() is salted per process)."""
    return hashlib.sha1(nodeid.encode("utf-8")).hexdigest()


@dataclass
class Split:
    """Which shard each test goes to, and what the split was based on."""

    total: int
    assignment: dict[str, int]  # nodeid -> shard (1-based)
    loads: list[float]  # estimated seconds per shard
    known: int  # tests with a recorded duration
    mean: float  # the weight of a test without one
    pinned: int

    def of(self, index: int) -> list[str]:
        return [n for n, k in self.assignment.items() if k == index]


def split(
    nodeids: Sequence[str],
    durations: Mapping[str, float],
    total: int,
    pinned: Iterable[str] = (),
) -> Split:
    """Greedy longest-processing-time into `total` shards; `pinned` tests all go to shard 1."""
    ids = list(dict.fromkeys(nodeids))
    recorded = [durations[n] for n in ids if n in durations]
    mean = sum(recorded) / len(recorded) if recorded else 1.0
    weight = {n: durations.get(n, mean) for n in ids}
    pinned_set = set(pinned) & set(ids)
    loads = [0.0] * total
    assignment: dict[str, int] = {}
    for n in sorted(pinned_set):
        assignment[n] = 1
        loads[0] += weight[n]
    heap = [(load, i) for i, load in enumerate(loads)]
    heapq.heapify(heap)
    rest = sorted(
        (n for n in ids if n not in pinned_set), key=lambda n: (-weight[n], _stable_key(n))
    )
    for n in rest:
        load, i = heapq.heappop(heap)
        assignment[n] = i + 1
        loads[i] = load + weight[n]
        heapq.heappush(heap, (loads[i], i))
    return Split(total, assignment, loads, len(recorded), mean, len(pinned_set))


def split_by_count(nodeids: Sequence[str], total: int) -> dict[str, int]:
    """The split without durations that a count-based tool makes: contiguous runs of the
    collection order, equal in number (what the benchmark compares against)."""
    ids = list(dict.fromkeys(nodeids))
    base, extra = divmod(len(ids), total)
    out: dict[str, int] = {}
    start = 0
    for k in range(total):
        size = base + (1 if k < extra else 0)
        for n in ids[start : start + size]:
            out[n] = k + 1
        start += size
    return out


# -- the pytest side ----------------------------------------------------------------------------


def add_options(group: Any) -> None:
    """Registered by `dagz.plugin.pytest_addoption`."""
    group.addoption(
        "--dagz-shard",
        action="store",
        default=None,
        metavar="K/N|off",
        help="run shard K of N of the suite (K from 1), split by recorded durations; default: "
        "from CI_NODE_INDEX/CI_NODE_TOTAL, CIRCLE_NODE_*, BUILDKITE_PARALLEL_JOB* when dagz is "
        "active; 'off' ignores those",
    )
    group.addoption(
        "--dagz-durations",
        action="store",
        default=None,
        metavar="PATH",
        help="per-test durations (pytest-split's format) the shard split reads "
        f"(default: {DEFAULT_DURATIONS} in the rootdir)",
    )
    group.addoption(
        "--dagz-store-durations",
        action="store_true",
        default=False,
        help="write this run's measured test durations into the durations file",
    )


@dataclass
class _Selected:
    """What a shard kept, for the header and the summary."""

    kept: int
    collected: int
    known: int
    mean: float
    pinned: int
    loads: list[float] = field(default_factory=list)

    def lines(self, shard: Shard, durations_path: Path) -> list[str]:
        if self.known:
            basis = (
                f"split by the durations in {durations_path} ({self.known} of "
                f"{self.collected} recorded; others counted at the mean {self.mean:.3f}s)"
                if self.known < self.collected
                else f"split by the durations in {durations_path}"
            )
        else:
            basis = f"split by test id (no recorded durations in {durations_path})"
        load = self.loads[shard.index - 1] if self.loads else 0.0
        est = f"; estimated {load:.2f}s of {sum(self.loads):.2f}s" if self.known else ""
        pinned = (
            f"; {self.pinned} dagz_main_worker/dagz_node_mutex test(s) pinned to shard 1"
            if self.pinned
            else ""
        )
        return [
            f"shard {shard}: {self.kept} of {self.collected} tests "
            f"({self.collected - self.kept} in other shards); {basis}{est}{pinned}"
        ]


class ShardPlugin:
    """Registered by `dagz.plugin.pytest_configure` in every run (and every xdist worker)."""

    def __init__(self, config: pytest.Config, *, active: bool) -> None:
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        try:
            self.shard = resolve_shard(
                config.getoption("dagz_shard", None), os.environ, read_env=active
            )
        except ShardError as exc:
            raise pytest.UsageError(f"dagz: {exc}") from None
        opt = config.getoption("dagz_durations", None)
        if opt:
            path = Path(str(opt)).expanduser()
            self.durations_path = (
                path if path.is_absolute() else config.invocation_params.dir / path
            )
        else:
            self.durations_path = config.rootpath / DEFAULT_DURATIONS
        self.store = bool(config.getoption("dagz_store_durations", False))
        if self.shard is not None or self.store:
            self._durations()  # a broken file is one usage line now, not a worker crash
        self.measured: dict[str, float] = {}
        self.lines: list[str] = []
        self.started = time.time()

    def _durations(self) -> dict[str, float]:
        try:
            return load_durations(self.durations_path)
        except ShardError as exc:
            raise pytest.UsageError(f"dagz: {exc}") from None

    def _shown_path(self) -> Path:
        try:
            return self.durations_path.relative_to(self.config.rootpath)
        except ValueError:
            return self.durations_path

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        if self.shard is None:
            return []
        return [f"dagz: shard {self.shard} (from {self.shard.source})"]

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        shard = self.shard
        if shard is None:
            return
        durations = self._durations()
        ids = [item.nodeid for item in items]
        pinned = [
            item.nodeid
            for item in items
            if any(item.get_closest_marker(m) is not None for m in PINNED_MARKERS)
        ]
        result = split(ids, durations, shard.total, pinned)
        keep = [item for item in items if result.assignment[item.nodeid] == shard.index]
        dropped = [item for item in items if result.assignment[item.nodeid] != shard.index]
        selected = _Selected(
            len(keep), len(items), result.known, result.mean, result.pinned, result.loads
        )
        self.lines = selected.lines(shard, self._shown_path())
        items[:] = keep
        if dropped:
            config.hook.pytest_deselected(items=dropped)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Setup + call + teardown seconds per test (the controller gets the workers' reports)."""
        if self.is_worker:
            return
        self.measured[report.nodeid] = self.measured.get(report.nodeid, 0.0) + report.duration

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        out = getattr(node, "workeroutput", None) or {}
        for line in out.get(WORKEROUTPUT_KEY, []):
            if line not in self.lines:
                self.lines.append(line)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = self.config
        if self.is_worker:
            config.workeroutput[WORKEROUTPUT_KEY] = list(self.lines)  # type: ignore[attr-defined]
            return
        if self.store and self.measured:
            path, shown = self.durations_path, self._shown_path()
            if self.shard is not None:
                suffix = f".shard-{self.shard.index}-of-{self.shard.total}"
                path, shown = path.with_name(path.name + suffix), f"{shown}{suffix}"
            try:
                n = store_durations(path, self.measured)
            except (OSError, ShardError) as exc:
                self.lines.append(f"durations not stored: {exc}")
            else:
                join = (
                    f" (join the shards' files for the next split: dagz report merge "
                    f"--durations {self._shown_path()} {self._shown_path()}.shard-*)"
                    if self.shard is not None
                    else ""
                )
                self.lines.append(f"durations of {n} tests stored in {shown}{join}")
        self._annotate_trace()

    def _annotate_trace(self) -> None:
        """The `--dagz-trace` file just written gets this run's shard and summary lines (the
        provisioning lines among them), for `dagz report merge`."""
        opt = self.config.getoption("dagz_trace", None)
        if not opt:
            return
        path = Path(str(opt)).expanduser()
        if not path.is_absolute():
            path = self.config.invocation_params.dir / path
        try:
            if path.stat().st_mtime < self.started:
                return  # not written by this run
            data = json.loads(path.read_text(encoding="utf-8"))
            other = data.get("otherData")
            if not isinstance(other, dict) or other.get("generator") != "dagz":
                return
            from dagz._state import STATE

            if self.shard is not None:
                other["dagz_shard"] = {"index": self.shard.index, "total": self.shard.total}
            other["dagz_summary"] = list(STATE.summary)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(
                json.dumps(data, separators=(",", ":"), ensure_ascii=False), encoding="utf-8"
            )
            tmp.replace(path)
        except (OSError, ValueError) as exc:
            self.lines.append(f"could not add the shard to the trace {path}: {exc}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or not self.lines:
            return
        terminalreporter.section("dagz shard")
        for line in self.lines:
            terminalreporter.write_line(line)
