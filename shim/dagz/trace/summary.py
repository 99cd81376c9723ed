"""The terminal summary of a run: OTel sub-spans per `otel_type` (count, time, errors and HTTP
4xx answers apart), the slowest tests with theirs."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dagz.trace import recording
from dagz.trace.convert import OUTCOME_4XX, OUTCOME_ERROR, span_outcome
from dagz.trace.merge import Lane, lanes_of
from dagz.trace.model import KIND_OTEL, KIND_TEST, Span, SpanResult


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.1f}ms"


#: otel_type → [count, total ns, errors, 4xx] (`dagz.trace.convert.outcome` tells the last two).
Stats = dict[str, list[int]]


def _add(stats: Stats, otel_type: str, numbers: Sequence[int]) -> None:
    entry = stats.get(otel_type)
    if entry is None:
        stats[otel_type] = list(numbers)
    else:
        for i, n in enumerate(numbers):
            entry[i] += n


def _merge(into: Stats, stats: Mapping[str, Sequence[int]]) -> None:
    for otel_type, numbers in stats.items():
        _add(into, otel_type, numbers)


def _notes(errors: int, http_4xx: int) -> str:
    """`` (1 error, 3 4xx)``; empty when there is neither."""
    notes = []
    if errors:
        notes.append(f"{errors} error{'s' if errors != 1 else ''}")
    if http_4xx:
        notes.append(f"{http_4xx} 4xx")
    return f" ({', '.join(notes)})" if notes else ""


def _types_text(stats: Stats, limit: int = 6) -> str:
    """``psycopg2.SELECT ×3 1.2ms, requests.GET ×2 5.0ms (1 error, 1 4xx)``, most time first."""  # noqa: RUF002
    ordered = sorted(stats.items(), key=lambda item: (-item[1][1], item[0]))
    parts = []
    for otel_type, (count, ns, errors, http_4xx) in ordered[:limit]:
        parts.append(f"{otel_type} ×{count} {_ms(ns)}{_notes(errors, http_4xx)}")  # noqa: RUF001
    if len(ordered) > limit:
        parts.append(f"+{len(ordered) - limit} more")
    return ", ".join(parts)


def _collect(lanes: Sequence[Lane]) -> tuple[list[tuple[Span, str]], dict[str, Stats], set[str]]:
    """(test spans with their lane, sub-span numbers per owner, the test spans' ids)."""
    tests: list[tuple[Span, str]] = []
    per_owner: dict[str, Stats] = {}
    test_owners: set[str] = set()
    for ln in lanes:
        for owner, stats in (ln.payload.get("stats") or {}).items():
            _merge(per_owner.setdefault(owner, {}), stats)
        for s in ln.spans:
            if s.kind == KIND_TEST:
                tests.append((s, ln.lane))
                test_owners.add(s.sid)
            elif s.kind == KIND_OTEL:
                kind = span_outcome(s)
                numbers = (1, s.duration_ns, int(kind == OUTCOME_ERROR), int(kind == OUTCOME_4XX))
                _add(per_owner.setdefault(s.owner or "", {}), s.otel_type or "otel", numbers)
    return tests, per_owner, test_owners


def summary_lines(payloads: Iterable[Mapping[str, Any] | Lane], top: int = 10) -> list[str]:
    """The slowest tests with their sub-span count and time per `otel_type`."""
    lanes = lanes_of(payloads)
    tests, per_owner, test_owners = _collect(lanes)
    dropped = sum(int(ln.payload.get("dropped", 0) or 0) for ln in lanes)
    in_tests: Stats = {}
    outside: Stats = {}
    for owner, stats in per_owner.items():
        _merge(in_tests if owner in test_owners else outside, stats)
    n_in = sum(v[0] for v in in_tests.values())
    n_out = sum(v[0] for v in outside.values())
    lines = [
        f"{len(tests)} tests on {len(lanes)} worker(s); {n_in} OTel sub-spans in tests, "
        f"{n_out} outside tests"
        + (
            f"; {dropped} not in the trace (over {recording.MAX_OTEL_SPANS} per worker)"
            if dropped
            else ""
        )
    ]
    if n_in or n_out:
        everything: Stats = {}
        for stats in (in_tests, outside):
            _merge(everything, stats)
        lines.append(f"by otel_type: {_types_text(everything, limit=12)}")
    if tests:
        slowest = heapq.nlargest(top, tests, key=lambda t: t[0].duration_ns)
        lines.append(f"slowest {len(slowest)} tests:")
        for span, lane in slowest:
            stats = per_owner.get(span.sid, {})
            count = sum(v[0] for v in stats.values())
            noun = "sub-span" if count == 1 else "sub-spans"
            detail = f"{count} {noun}" + (f": {_types_text(stats)}" if stats else "")
            mark = " FAILED" if span.result == SpanResult.ERROR.value else ""
            lines.append(f"  {span.duration_ns / 1e9:8.3f}s {span.name} [{lane}]{mark} — {detail}")
    return lines
