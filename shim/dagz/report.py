"""`dagz report merge`: the shards of one suite (`--dagz-shard K/N` in several CI jobs) as one run.

    dagz report merge TRACE... -o OUT [--junit OUT.xml IN.xml...] [--durations OUT IN...]

* **Trace.** The shards' `--dagz-trace` files (Chrome Trace Event JSON, one process per worker
  lane, see `dagz.trace.chrome`) become one trace with one band per shard and worker: processes
  renamed `shard K gwN`, pids renumbered so that they do not collide, flow ids likewise, and the
  timestamps put on one clock (each file's `otherData.t0_unix_ns`). A shard's number comes from
  the file (`otherData.dagz_shard`, written by the plugin), else from the order of the arguments.
* **Summary.** Printed: tests per shard and in all (outcomes), each shard's test time and the
  slowest shard's against the mean, the slowest tests, the node ids found in more than one shard,
  and the provisioning lines each shard's run recorded (`otherData.dagz_summary`).
* **JUnit.** `--junit OUT.xml IN.xml...`: one `<testsuites>` with one `<testsuite>` holding every
  test case; its counts (tests, failures, errors, skipped) and time are the sums of the inputs'.
* **Durations.** `--durations OUT IN...`: pytest-split `.test_durations` files joined into OUT
  (OUT's own entries kept unless an input has the test; later inputs win), for the next split:
  `--durations .test_durations .test_durations.shard-*`.

Give the trace files first: `--junit` and `--durations` take every name after them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Events whose `id` is a flow or async id (renumbered per file so that they do not collide).
_ID_PHASES = frozenset("sftbenSTpF")
_COUNTS = ("tests", "failures", "errors", "skipped")


class ReportError(Exception):
    """One line naming the input that is wrong and what to do."""


def add_parser(sub: Any) -> None:
    """`dagz report merge` (called by `dagz.cli`)."""
    report = sub.add_parser("report", help="merge the reports of the shards of one suite")
    actions = report.add_subparsers(dest="report_action", required=True)
    merge = actions.add_parser(
        "merge",
        help="the shards' traces as one Perfetto trace and one summary; their JUnit XML as one",
        description="Give the trace files first: --junit and --durations take every name "
        "after them.",
    )
    merge.add_argument("traces", nargs="*", metavar="TRACE", help="the shards' --dagz-trace files")
    merge.add_argument("-o", "--output", metavar="OUT", help="the merged trace (JSON)")
    merge.add_argument(
        "--junit", nargs="+", metavar="XML", help="OUT.xml IN.xml...: the JUnit XML merged"
    )
    merge.add_argument(
        "--durations", nargs="+", metavar="JSON", help="OUT IN...: .test_durations files joined"
    )
    merge.add_argument("--top", type=int, default=10, help="slowest tests listed (default 10)")


def main(args: argparse.Namespace) -> int:
    """Runs `dagz report merge`; errors are one `dagz: error:` line and exit status 2."""
    try:
        if not args.traces and not args.junit and not args.durations:
            raise ReportError("nothing to merge: give TRACE... -o OUT, --junit or --durations")
        if args.traces and not args.output:
            raise ReportError("give the merged trace's path with -o OUT")
        for opt, values in (("--junit", args.junit), ("--durations", args.durations)):
            if values is not None and len(values) < 2:
                raise ReportError(f"{opt} takes OUT and at least one input: {opt} OUT IN...")
        if args.traces:
            traces = [load_trace(Path(p)) for p in args.traces]
            merged, shards = merge_traces(traces)
            out = Path(args.output)
            _write_json(out, merged, compact=True)
            for line in summary_lines(merged, shards, top=args.top):
                print(line)
            bands = len(merged["otherData"]["workers"])
            n = sum(1 for e in merged["traceEvents"] if e.get("ph") == "X")
            print(f"merged trace: {out} ({n} spans, {bands} worker bands): open it in Perfetto")
        if args.junit:
            totals = merge_junit([Path(p) for p in args.junit[1:]], Path(args.junit[0]))
            text = ", ".join(f"{totals[k]} {k}" for k in _COUNTS)
            print(f"merged JUnit XML: {args.junit[0]} ({text})")
        if args.durations:
            n = merge_durations([Path(p) for p in args.durations[1:]], Path(args.durations[0]))
            print(f"merged durations: {args.durations[0]} ({n} tests)")
    except ReportError as exc:
        print(f"dagz: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _write_json(path: Path, data: Any, *, compact: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        if compact:
            json.dump(data, fh, separators=(",", ":"), ensure_ascii=False)
        else:
            json.dump(data, fh, indent=2)
    tmp.replace(path)


# -- traces -------------------------------------------------------------------------------------


@dataclass
class TraceFile:
    path: Path
    data: dict[str, Any]
    shard: int | None  # from the file's otherData
    total: int | None


@dataclass
class ShardInfo:
    """One input trace in the merged one."""

    shard: int
    path: Path
    bands: list[str] = field(default_factory=list)  # `shard K gwN`, pid order
    lines: list[str] = field(default_factory=list)  # the run's summary lines (provisioning)


def load_trace(path: Path) -> TraceFile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"trace {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ReportError(f"trace {path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("traceEvents"), list):
        raise ReportError(
            f"trace {path}: not a Chrome Trace Event file (no traceEvents list): give the "
            "files that --dagz-trace wrote"
        )
    other = data.get("otherData")
    if not isinstance(other, dict):
        other = data["otherData"] = {}
    tag = other.get("dagz_shard")
    shard = total = None
    if isinstance(tag, dict) and isinstance(tag.get("index"), int):
        shard = int(tag["index"])
        total = int(tag["total"]) if isinstance(tag.get("total"), int) else None
    return TraceFile(path, data, shard, total)


def _numbered(traces: Sequence[TraceFile]) -> list[tuple[int, TraceFile]]:
    """Each file with its shard number: the file's own when every file has a distinct one, else
    the argument order."""
    own = [t.shard for t in traces]
    if all(s is not None for s in own) and len(set(own)) == len(own):
        return sorted(((int(t.shard or 0), t) for t in traces), key=lambda p: p[0])
    return [(i, t) for i, t in enumerate(traces, start=1)]


def merge_traces(traces: Sequence[TraceFile]) -> tuple[dict[str, Any], list[ShardInfo]]:
    """One Chrome trace, one band (process) per shard and worker."""
    numbered = _numbered(traces)
    t0s = [int(t.data["otherData"].get("t0_unix_ns") or 0) for _, t in numbered]
    t0 = min((x for x in t0s if x), default=0)
    events: list[dict[str, Any]] = []
    shards: list[ShardInfo] = []
    next_pid = 1
    id_base = 0
    for (k, trace), file_t0 in zip(numbered, t0s, strict=True):
        info = ShardInfo(k, trace.path, lines=_summary_of(trace))
        shards.append(info)
        shift = (file_t0 - t0) / 1000.0 if file_t0 and t0 else 0.0
        pids: dict[Any, int] = {}
        max_id = 0
        for event in trace.data["traceEvents"]:
            if not isinstance(event, dict):
                continue
            e = dict(event)
            if "pid" in e:
                if e["pid"] not in pids:
                    pids[e["pid"]] = next_pid
                    next_pid += 1
                e["pid"] = pids[e["pid"]]
            if isinstance(e.get("ts"), int | float):
                e["ts"] = round(e["ts"] + shift, 3)
            if e.get("ph") in _ID_PHASES and isinstance(e.get("id"), int):
                max_id = max(max_id, e["id"])
                e["id"] = e["id"] + id_base
            if e.get("ph") == "M" and e.get("name") == "process_name":
                lane = str((e.get("args") or {}).get("name", "?")).removeprefix("dagz ")
                label = f"shard {k} {lane}"
                e["args"] = {**(e.get("args") or {}), "name": label}
                info.bands.append(label)
            elif e.get("ph") == "M" and e.get("name") == "process_sort_index":
                e["args"] = {**(e.get("args") or {}), "sort_index": e["pid"]}
            events.append(e)
        id_base += max_id + 1
    merged = {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "generator": "dagz report merge",
            "t0_unix_ns": t0,
            "workers": [band for s in shards for band in s.bands],
            "shards": [
                {"shard": s.shard, "file": str(s.path), "workers": s.bands, "summary": s.lines}
                for s in shards
            ],
        },
    }
    return merged, shards


def _summary_of(trace: TraceFile) -> list[str]:
    lines = trace.data["otherData"].get("dagz_summary")
    return [str(x) for x in lines] if isinstance(lines, list) else []


# -- the summary --------------------------------------------------------------------------------


@dataclass
class _Test:
    nodeid: str
    seconds: float
    outcome: str
    band: str
    shard: int


def _tests_of(merged: dict[str, Any]) -> list[_Test]:
    bands: dict[int, str] = {}
    for e in merged["traceEvents"]:
        if e.get("ph") == "M" and e.get("name") == "process_name":
            bands[e["pid"]] = str((e.get("args") or {}).get("name", "?"))
    tests = []
    for e in merged["traceEvents"]:
        if e.get("ph") != "X" or e.get("cat") != "test":
            continue
        band = bands.get(e.get("pid", 0), "?")
        parts = band.split()
        shard = int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else 0
        args = e.get("args") or {}
        nodeid = str(args.get("nodeid") or e.get("name"))
        outcome = str(args.get("outcome") or "passed")
        tests.append(_Test(nodeid, float(e.get("dur", 0)) / 1e6, outcome, band, shard))
    return tests


def _outcomes(tests: Sequence[_Test]) -> str:
    counts = Counter(t.outcome for t in tests)
    return ", ".join(f"{n} {o}" for o, n in sorted(counts.items(), key=lambda p: (-p[1], p[0])))


def summary_lines(merged: dict[str, Any], shards: Sequence[ShardInfo], top: int = 10) -> list[str]:
    tests = _tests_of(merged)
    bands = merged["otherData"]["workers"]
    lines = [
        f"dagz report: {len(shards)} shard(s), {len(bands)} worker band(s), {len(tests)} tests"
        + (f" ({_outcomes(tests)})" if tests else "")
    ]
    times: list[float] = []
    for s in shards:
        mine = [t for t in tests if t.shard == s.shard]
        seconds = sum(t.seconds for t in mine)
        times.append(seconds)
        workers = ", ".join(b.split(" ", 2)[-1] for b in s.bands) or "no workers"
        lines.append(
            f"  shard {s.shard} ({s.path.name}): {len(mine)} tests on {workers}"
            + (f" ({_outcomes(mine)})" if mine else "")
            + f"; test time {seconds:.2f}s"
        )
    if len(times) > 1 and sum(times) > 0:
        mean = sum(times) / len(times)
        lines.append(
            f"shard test time: slowest {max(times):.2f}s = {max(times) / mean:.2f}x "
            f"the mean {mean:.2f}s"
        )
    seen = Counter(t.nodeid for t in tests)
    twice = sorted(n for n, c in seen.items() if c > 1)
    if twice:
        lines.append(f"WARNING: {len(twice)} test(s) ran more than once: {', '.join(twice[:5])}")
    slowest = sorted(tests, key=lambda t: (-t.seconds, t.nodeid))[:top]
    if slowest:
        lines.append(f"slowest {len(slowest)} tests:")
        lines += [f"  {t.seconds:8.3f}s {t.nodeid} [{t.band}] {t.outcome}" for t in slowest]
    provisioning = [(s.shard, line) for s in shards for line in sorted(s.lines)]
    if provisioning:
        lines.append("provisioning and notes of the shards' runs:")
        lines += [f"  shard {k}: {line}" for k, line in provisioning]
    return lines


# -- JUnit XML ----------------------------------------------------------------------------------


def _suites(path: Path) -> list[ET.Element]:
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise ReportError(f"JUnit XML {path}: no such file") from None
    except (OSError, ET.ParseError) as exc:
        raise ReportError(f"JUnit XML {path}: not readable XML ({exc})") from None
    if root.tag == "testsuite":
        return [root]
    if root.tag == "testsuites":
        return list(root.iter("testsuite"))
    raise ReportError(f"JUnit XML {path}: root <{root.tag}> is neither testsuites nor testsuite")


def _count(suite: ET.Element, key: str) -> int:
    value = suite.get(key)
    if value is not None and value.isdigit():
        return int(value)
    cases = suite.findall("testcase")
    if key == "tests":
        return len(cases)
    tag = {"failures": "failure", "errors": "error", "skipped": "skipped"}[key]
    return sum(1 for c in cases if c.find(tag) is not None)


def merge_junit(inputs: Sequence[Path], out: Path) -> dict[str, int]:
    """One testsuite with every test case of the inputs; counts and time add up."""
    suites = [s for path in inputs for s in _suites(path)]
    totals = {k: sum(_count(s, k) for s in suites) for k in _COUNTS}
    seconds = sum(float(s.get("time") or 0) for s in suites)
    stamps = sorted(s.get("timestamp", "") for s in suites if s.get("timestamp"))
    attrs = {
        "name": suites[0].get("name", "pytest") if suites else "pytest",
        **{k: str(v) for k, v in totals.items()},
        "time": f"{seconds:.3f}",
    }
    if stamps:
        attrs["timestamp"] = stamps[0]
    if suites and suites[0].get("hostname"):
        attrs["hostname"] = str(suites[0].get("hostname"))
    root = ET.Element("testsuites", {**attrs, "name": "pytest tests"})
    merged = ET.SubElement(root, "testsuite", attrs)
    props: list[ET.Element] = []
    for s in suites:
        for p in s.iter("property"):
            if not any(p.attrib == q.attrib for q in props):
                props.append(p)
    if props:
        holder = ET.SubElement(merged, "properties")
        holder.extend(props)
    for s in suites:
        merged.extend(c for c in s if c.tag not in ("properties",))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(out)
    return totals


# -- durations ----------------------------------------------------------------------------------


def merge_durations(inputs: Sequence[Path], out: Path) -> int:
    from dagz.shard import ShardError, load_durations, write_durations

    merged: dict[str, float] = {}
    for path in [out, *inputs] if out.exists() else inputs:
        if not path.exists():
            raise ReportError(f"durations file {path}: no such file")
        try:
            merged.update(load_durations(path))
        except ShardError as exc:
            raise ReportError(str(exc)) from None
    write_durations(out, merged)
    return len(merged)
