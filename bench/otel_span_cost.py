"""Cost of one OpenTelemetry span through the dagz span processor, in µs.

Two SDK tracer providers in one process, measured side by side (alternating rounds, best round
of each kept): one with no span processor at all (the baseline: what the SDK itself costs) and
one with the dagz processor feeding an installed recorder. Spans look like a psycopg2 span
(a CLIENT span with six attributes, started as the current span).

Printed: µs/span for both, their ratio, the processor's hot-path cost (`on_end` in the
application's thread: the difference), and the deferred conversion cost per span (paid by the
pytest thread at the end of each test, not by the application).

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
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

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
    if args.suite:
        suite_ratio(args.suite_runs, args.suite_tests)


if __name__ == "__main__":
    main()
