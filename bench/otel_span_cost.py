"""Cost of one OpenTelemetry span through the dagz span processor, in µs.

Two SDK tracer providers in one process, measured side by side (alternating rounds, best round
of each kept): one with no span processor at all (the baseline: what the SDK itself costs) and
one with the dagz processor feeding an installed recorder. Spans look like a psycopg2 span
(a CLIENT span with six attributes, started as the current span).

Printed: µs/span for both, their ratio, the processor's hot-path cost (`on_end` in the
application's thread: the difference), and the deferred conversion cost per span (paid by the
pytest thread at the end of each test, not by the application).

    .venv/bin/python bench/otel_span_cost.py [--spans N] [--rounds R]
"""

from __future__ import annotations

import argparse
import gc
import time

from dagz import _trace
from dagz.otel import SPAN_PROCESSOR
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

ATTRS = {
    "db.system": "postgresql",
    "db.name": "myapp",
    "db.statement": "SELECT id, name FROM users WHERE id = %s",
    "db.user": "postgres",
    "net.peer.name": "127.0.0.1",
    "net.peer.port": 5432,
}


def run_spans(
    provider: TracerProvider, n: int, per_test: int, recorder: _trace.Recorder | None
) -> tuple[float, float]:
    """(seconds in the spans, seconds converting them): `n` spans (start as current, end) in
    "tests" of `per_test` spans; a recorder converts them at the end of each test."""
    tracer = provider.get_tracer("opentelemetry.instrumentation.psycopg2")
    gc.collect()
    in_spans = in_drain = 0.0
    clock = time.perf_counter
    for _ in range(n // per_test):
        t0 = clock()
        for _ in range(per_test):
            with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT, attributes=ATTRS):
                pass
        t1 = clock()
        in_spans += t1 - t0
        if recorder is not None:
            recorder.drain()
            in_drain += clock() - t1
    return in_spans, in_drain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000, help="spans per round")
    parser.add_argument("--per-test", type=int, default=50, help="spans per simulated test")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    n = args.spans - args.spans % args.per_test

    base = TracerProvider()
    dagz = TracerProvider()
    dagz.add_span_processor(SPAN_PROCESSOR)
    recorder = _trace.Recorder("bench", 0)
    test = recorder.open("bench::test", _trace.KIND_TEST, test="bench::test")
    recorder.open("test.call", _trace.KIND_CALL)
    _trace.install(recorder)

    run_spans(base, 2000, args.per_test, None)  # warm-up
    run_spans(dagz, 2000, args.per_test, recorder)
    best_base = best_dagz = best_drain = float("inf")
    for _ in range(args.rounds):
        recorder.spans.clear()
        recorder.otel_count = 0
        best_base = min(best_base, run_spans(base, n, args.per_test, None)[0])
        spans_s, drain_s = run_spans(dagz, n, args.per_test, recorder)
        assert recorder.otel_count == n, recorder.otel_count
        if spans_s + drain_s < best_dagz + best_drain:
            best_dagz, best_drain = spans_s, drain_s
    recorder.close(test)
    _trace.install(None)

    us_base = best_base / n * 1e6
    us_dagz = best_dagz / n * 1e6
    us_drain = best_drain / n * 1e6
    print(
        f"{n} spans per round in tests of {args.per_test} spans, {args.rounds} rounds "
        "(best round of each)"
    )
    print(f"SDK span, no processor:                      {us_base:7.3f} µs/span")
    print(
        f"SDK span + dagz processor:                   {us_dagz:7.3f} µs/span"
        f"   ratio {us_dagz / us_base:.3f}"
    )
    print(f"dagz on_end (application's thread):          {us_dagz - us_base:7.3f} µs/span")
    print(f"dagz conversion at test end (pytest thread): {us_drain:7.3f} µs/span")
    print(
        f"dagz total per span:                         {us_dagz - us_base + us_drain:7.3f} µs/span"
        f"   ratio {(us_dagz + us_drain) / us_base:.3f}"
    )


if __name__ == "__main__":
    main()
