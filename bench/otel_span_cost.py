"""Cost of one OpenTelemetry span through the dagz span processor, in µs.

Two SDK tracer providers in one process, measured side by side (alternating rounds, best round
of each kept): one with no span processor at all (the baseline: what the SDK itself costs) and
one with the dagz processor feeding an installed recorder. Spans look like a psycopg2 span
(a CLIENT span with six attributes, started as the current span).

Printed, without and with ``--dagz-trace`` (which keeps every sub-span; without it only the
summary's numbers are kept): µs/span for both providers and their ratio; the processor's
hot-path cost (`on_end`, in the application's thread: the difference); the deferred conversion
at each test's end (pytest thread, not the application); and the session-end cost per span
(the worker's payload, the controller's merge and summary, and the Trace Event JSON).

    .venv/bin/python bench/otel_span_cost.py [--spans N] [--rounds R]

With ``--suite`` it also times the example suite (tests/e2e/otel_project, copied to a temporary
directory) run with ``--dagz-workers 2`` with and without ``dagz.otel.configure`` (alternating
runs, median of each) and prints the ratio. Needs PostgreSQL at 127.0.0.1:5432 (user postgres,
trust) and the shim at target/release/libdagz.so.

    .venv/bin/python bench/otel_span_cost.py --suite [--suite-runs 5] [--suite-tests 200]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from dagz import trace as _trace
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


REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "tests" / "e2e" / "otel_project"
PROJECT_FILES = {"project_conftest.py": "conftest.py", "project_test_app.py": "test_app.py"}


def _suite_env(mode: str, db: str, tests: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "DAGZ_", "OTEL_", "LD_PRELOAD"))
    }
    env.update({"OTEL_E2E_MODE": mode, "OTEL_E2E_DB": db, "OTEL_E2E_MANY": str(tests)})
    return env


def suite_ratio(runs: int, tests: int) -> None:
    """Wall-clock time of the example suite with and without dagz.otel.configure."""
    db = f"dagz_bench_otel_{uuid.uuid4().hex[:8]}"
    times: dict[str, list[float]] = {"off": [], "full": []}
    with tempfile.TemporaryDirectory(prefix="dagz-otel-bench-") as tmp:
        directory = Path(tmp)
        for src, dst in PROJECT_FILES.items():
            shutil.copyfile(PROJECT / src, directory / dst)
        (directory / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
        argv = [sys.executable, "-m", "pytest", "-q", "--dagz-workers", "2"]
        try:
            for i in range(runs * 2 + 2):
                mode = ("off", "full")[i % 2]
                start = time.perf_counter()
                proc = subprocess.run(
                    argv,
                    cwd=directory,
                    env=_suite_env(mode, db, tests),
                    capture_output=True,
                    text=True,
                    check=False,
                )
                elapsed = time.perf_counter() - start
                if proc.returncode != 0:
                    sys.exit(f"suite run failed ({mode}):\n{proc.stdout}\n{proc.stderr}")
                if i >= 2:  # the first pair warms up (and creates the databases)
                    times[mode].append(elapsed)
        finally:
            _drop_databases(db)
    off, full = statistics.median(times["off"]), statistics.median(times["full"])
    print(f"example suite ({tests + 6} tests, --dagz-workers 2), median of {runs} runs each:")
    print(f"  without dagz.otel.configure: {off:7.3f} s")
    print(f"  with dagz.otel.configure:    {full:7.3f} s   ratio {full / off:.3f}")


def _drop_databases(base: str) -> None:
    import psycopg  # noqa: PLC0415 - only the --suite mode needs a driver

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (base + "%",)
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def session_end(recorder: _trace.Recorder, trace: bool) -> float:
    """Seconds for the session's end: the worker's payload (encoded), the controller's decoding
    and summary, and with a trace the Trace Event JSON (built and serialized, not written)."""
    start = time.perf_counter()
    encoded = _trace.encode_payload(recorder.payload())
    payload = _trace.decode_payload(encoded)
    assert payload is not None
    lanes = _trace.lanes_of([payload])
    _trace.summary_lines(lanes)
    if trace:
        json.dumps(_trace.chrome_trace(lanes), separators=(",", ":"), ensure_ascii=False)
    return time.perf_counter() - start


def measure(n: int, per_test: int, rounds: int, trace: bool) -> dict[str, float]:
    """Best-round µs/span: the SDK alone, SDK + dagz processor, conversion, session end."""
    base = TracerProvider()
    dagz = TracerProvider()
    dagz.add_span_processor(SPAN_PROCESSOR)
    best = {"base": float("inf"), "dagz": float("inf"), "drain": 0.0, "end": float("inf")}
    run_spans(base, 2000, per_test, None)  # warm-up
    for _ in range(rounds):
        recorder = _trace.Recorder("gw0", 0, keep_spans=trace)
        test = recorder.open("bench::test", _trace.KIND_TEST, test="bench::test")
        recorder.open("test.call", _trace.KIND_CALL)
        _trace.install(recorder)
        try:
            best["base"] = min(best["base"], run_spans(base, n, per_test, None)[0])
            spans_s, drain_s = run_spans(dagz, n, per_test, recorder)
            assert recorder.otel_count == n, recorder.otel_count
            if spans_s + drain_s < best["dagz"] + best["drain"]:
                best["dagz"], best["drain"] = spans_s, drain_s
            recorder.close(test)
            best["end"] = min(best["end"], session_end(recorder, trace))
        finally:
            _trace.install(None)
    return {k: v / n * 1e6 for k, v in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000, help="spans per round")
    parser.add_argument("--per-test", type=int, default=50, help="spans per simulated test")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--suite", action="store_true", help="also time the example suite")
    parser.add_argument("--suite-runs", type=int, default=5)
    parser.add_argument("--suite-tests", type=int, default=200, help="test_many[n] tests")
    args = parser.parse_args()
    n = args.spans - args.spans % args.per_test
    print(
        f"{n} spans per round in tests of {args.per_test} spans, {args.rounds} rounds "
        "(best round of each); µs per span"
    )
    for trace in (False, True):
        r = measure(n, args.per_test, args.rounds, trace)
        hot = r["dagz"] - r["base"]
        total = hot + r["drain"] + r["end"]
        print(f"-- {'with --dagz-trace' if trace else 'without --dagz-trace (summary only)'}")
        print(f"  SDK span, no processor:                       {r['base']:7.3f}")
        print(
            f"  SDK span + dagz processor:                    {r['dagz']:7.3f}"
            f"   ratio {r['dagz'] / r['base']:.3f}"
        )
        print(f"  dagz on_end, in the application's thread:     {hot:7.3f}")
        print(f"  dagz conversion at each test's end:           {r['drain']:7.3f}")
        print(f"  dagz at the session's end (payload, summary): {r['end']:7.3f}")
        print(
            f"  dagz total:                                   {total:7.3f}"
            f"   ratio {(r['base'] + total) / r['base']:.3f}"
        )
    if args.suite:
        suite_ratio(args.suite_runs, args.suite_tests)


if __name__ == "__main__":
    main()
