"""The Chrome Trace Event writer: the merged run as Trace Event JSON (open it in Perfetto)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagz.trace.merge import Lane, lanes_of
from dagz.trace.model import KIND_OTEL, KIND_SESSION, Span


def nest_lanes(spans: Iterable[Span]) -> list[list[Span]]:
    """Split the spans of one thread into lanes in which complete events nest strictly (what a
    Trace Event viewer needs): overlapping-but-not-nested spans (async code) go to another lane."""
    lanes: list[list[Span]] = []
    stacks: list[list[int]] = []
    for s in sorted(spans, key=lambda s: (s.start_ns, -s.end_ns)):
        start, end = s.start_ns, s.end_ns
        for lane, stack in zip(lanes, stacks, strict=True):
            while stack and stack[-1] <= start:
                stack.pop()
            if not stack or stack[-1] >= end:
                stack.append(end)
                lane.append(s)
                break
        else:
            lanes.append([s])
            stacks.append([end])
    return lanes


def _event_args(s: Span) -> dict[str, Any]:
    args = dict(s.attrs)
    args["id"] = s.sid
    args["result"] = s.result
    if s.parent is not None:
        args["parent"] = s.parent
    if s.test is not None:
        args["test"] = s.test
    if s.kind == KIND_OTEL:
        args["otel_type"] = s.otel_type
        args["span_name"] = s.name
        args["thread"] = s.thread
        if s.otel_parent is not None and s.otel_parent != s.parent:
            args["otel_parent"] = s.otel_parent
    return args


def _flows(
    spans: Sequence[Span], track_of: Mapping[str, tuple[int, dict[str, Any]]], pid: int, base: int
) -> list[dict[str, Any]]:
    """Flow arrows (``ph: "s"``/``"f"``) from an OTel parent to its child on another thread (the
    client's GET → the server thread's span), so a viewer draws the link across tracks."""
    flows: list[dict[str, Any]] = []
    for s in spans:
        if s.kind != KIND_OTEL or s.parent is None or s.parent != s.otel_parent:
            continue
        parent = track_of.get(s.parent)
        child = track_of.get(s.sid)
        if parent is None or child is None or parent[0] == child[0]:
            continue
        p_event, c_event = parent[1], child[1]
        # the start sits inside the parent's slice, at the child's start when it can
        start = min(max(c_event["ts"], p_event["ts"]), p_event["ts"] + p_event["dur"])
        flow_id = base + len(flows) // 2 + 1
        common = {"name": "parent", "cat": "otel.link", "id": flow_id, "pid": pid}
        flows.append({"ph": "s", **common, "tid": parent[0], "ts": start})
        flows.append({"ph": "f", **common, "tid": child[0], "ts": c_event["ts"], "bp": "e"})
    return flows


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "args": args}


def chrome_trace(payloads: Iterable[Mapping[str, Any] | Lane]) -> dict[str, Any]:
    """The run as Chrome Trace Event JSON: one process lane (``pid``) per worker, one ``tid`` per
    thread (and nesting lane), complete events (``ph: "X"``) with ``ts``/``dur`` in µs, metadata
    events (``ph: "M"``) naming the lanes, flow events (``ph: "s"``/``"f"``) for OTel parent
    links that cross threads."""
    lanes = lanes_of(payloads)
    t0 = min((s.start_ns for ln in lanes for s in ln.spans), default=0)
    events: list[dict[str, Any]] = []
    for pid, ln in enumerate(lanes, start=1):
        events.append(_meta("process_name", pid, 0, {"name": f"dagz {ln.lane}"}))
        events.append(_meta("process_sort_index", pid, 0, {"sort_index": pid}))
        threads: dict[tuple[int, str], list[Span]] = {}
        for s in ln.spans:
            threads.setdefault((s.tident, s.thread), []).append(s)

        def thread_key(
            item: tuple[tuple[int, str], list[Span]], main: Any = ln.main_thread
        ) -> tuple[int, int]:
            (_, name), members = item
            is_main = name == main or any(m.kind == KIND_SESSION for m in members)
            return (0 if is_main else 1, min(m.start_ns for m in members))

        tid = 0
        track_of: dict[str, tuple[int, dict[str, Any]]] = {}
        for (_, thread_name), members in sorted(threads.items(), key=thread_key):
            for index, lane_spans in enumerate(nest_lanes(members)):
                tid += 1
                label = thread_name if index == 0 else f"{thread_name} (overlap {index})"
                events.append(_meta("thread_name", pid, tid, {"name": label}))
                events.append(_meta("thread_sort_index", pid, tid, {"sort_index": tid}))
                for s in lane_spans:
                    ts = round((s.start_ns - t0) / 1000.0, 3)
                    end = round((max(s.end_ns, s.start_ns) - t0) / 1000.0, 3)
                    event = {
                        "ph": "X",
                        "name": s.otel_type if s.kind == KIND_OTEL and s.otel_type else s.name,
                        "cat": s.kind,
                        "ts": ts,
                        "dur": round(end - ts, 3),
                        "pid": pid,
                        "tid": tid,
                        "args": _event_args(s),
                    }
                    events.append(event)
                    track_of[s.sid] = (tid, event)
        events.extend(_flows(ln.spans, track_of, pid, len(events)))
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "generator": "dagz",
            "t0_unix_ns": t0,
            "workers": [ln.lane for ln in lanes],
        },
    }


def write_chrome_trace(path: Path, payloads: Iterable[Mapping[str, Any] | Lane]) -> int:
    """Write the trace (atomically); returns the number of complete events."""
    trace = chrome_trace(payloads)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(trace, fh, separators=(",", ":"), ensure_ascii=False)
    tmp.replace(path)
    return sum(1 for e in trace["traceEvents"] if e["ph"] == "X")
