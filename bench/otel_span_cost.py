"""Cost of one OpenTelemetry span through the dagz span processor, in µs.

Two SDK tracer providers in one process, measured side by side: one uncounted warm-up round,
then ROUNDS rounds in which both run, the order alternating every round (baseline first in odd
rounds, dagz first in even ones); each figure is the median over the rounds with its min-max,
and every round's raw numbers are printed. One provider has no span processor at all (the
baseline: what the SDK itself costs), the other the dagz processor feeding an installed
recorder. Spans look like a psycopg2 span
(a CLIENT span with six attributes, started as the current span).

Printed, without and with ``--dagz-trace`` (which keeps every sub-span; without it only the
summary's numbers are kept): µs/span for both providers and their ratio; the processor's
hot-path cost (`on_end`, in the application's thread: the difference); the deferred conversion
at each test's end (pytest thread, not the application); and the session-end cost per span
(the worker's payload, the controller's merge and summary, and the Trace Event JSON).

    .venv/bin/python bench/otel_span_cost.py [--spans N] [--rounds R]

With ``--suite`` it also times the example suite (tests/e2e/otel_project, copied to a temporary
directory) run with ``--dagz-workers 2`` with and without ``dagz.otel.configure``: one
uncounted warm-up pair, then pairs whose order alternates; median and min-max of each, the ratio
of the medians with the range of the per-pair ratios, and every run's time. Its databases are
``dz_bench_<random>_otel…``, dropped at the end, also on failure. Needs PostgreSQL at
127.0.0.1:5432 (user postgres, trust) and the shim at target/release/libdagz.so.

    .venv/bin/python bench/otel_span_cost.py --suite [--suite-runs 5] [--suite-tests 200]
    .venv/bin/python bench/otel_span_cost.py --suite --quick    # 2 rounds of 2000, 1 suite pair
"""

# bench-run-args: --suite

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
from pathlib import Path

from _names import cleanup_at_exit
from _names import name as bench_name
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
    db = bench_name("otel")
    times: dict[str, list[float]] = {"off": [], "full": []}
    raw: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dagz-otel-bench-") as tmp:
        directory = Path(tmp)
        for src, dst in PROJECT_FILES.items():
            shutil.copyfile(PROJECT / src, directory / dst)
        (directory / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
        argv = [sys.executable, "-m", "pytest", "-q", "--dagz-workers", "2"]
        try:
            for pair in range(runs + 1):  # pair 0 warms up (and creates the databases)
                order = ("off", "full") if pair % 2 == 0 else ("full", "off")
                row = []
                for mode in order:
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
                    row.append(f"{mode} {elapsed:.3f}")
                    if pair:
                        times[mode].append(elapsed)
                raw.append(f"    {'warm-up' if pair == 0 else f'pair {pair}'}: " + ", ".join(row))
        finally:
            _drop_databases(db)
    off, full = statistics.median(times["off"]), statistics.median(times["full"])
    paired = [f / o for f, o in zip(times["full"], times["off"], strict=True)]
    print(
        f"example suite ({tests + 6} tests, --dagz-workers 2): 1 uncounted warm-up pair, then"
        f" {runs} pairs, order alternating; median (min-max), seconds"
    )
    print("  raw: each pair in its order")
    print("\n".join(raw))
    print(
        f"  without dagz.otel.configure: {off:7.3f} s"
        f" ({min(times['off']):.3f}-{max(times['off']):.3f})"
    )
    print(
        f"  with dagz.otel.configure:    {full:7.3f} s"
        f" ({min(times['full']):.3f}-{max(times['full']):.3f})"
        f"   ratio {full / off:.3f} (per pair {min(paired):.3f}-{max(paired):.3f})"
    )


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


Rounds = dict[str, list[float]]


def measure(n: int, per_test: int, rounds: int, trace: bool) -> Rounds:
    """µs/span of every round: the SDK alone (``base``), SDK + dagz processor (``dagz``), the
    conversion at each test's end (``drain``), the session's end (``end``); the two providers
    run in an order that alternates every round (``first``: 0 baseline first, 1 dagz first)."""
    base = TracerProvider()
    dagz = TracerProvider()
    dagz.add_span_processor(SPAN_PROCESSOR)
    out: Rounds = {"base": [], "dagz": [], "drain": [], "end": [], "first": []}
    for rnd in range(rounds + 1):  # round 0: warm-up, not counted
        recorder = _trace.Recorder("gw0", 0, keep_spans=trace)
        test = recorder.open("bench::test", _trace.KIND_TEST, test="bench::test")
        recorder.open("test.call", _trace.KIND_CALL)
        _trace.install(recorder)
        try:
            got: dict[str, float] = {}
            for side in ("base", "dagz") if rnd % 2 == 0 else ("dagz", "base"):
                if side == "base":
                    got["base"] = run_spans(base, n, per_test, None)[0]
                else:
                    got["dagz"], got["drain"] = run_spans(dagz, n, per_test, recorder)
            assert recorder.otel_count == n, recorder.otel_count
            recorder.close(test)
            got["end"] = session_end(recorder, trace)
        finally:
            _trace.install(None)
        if rnd:
            for key, seconds in got.items():
                out[key].append(seconds / n * 1e6)
            out["first"].append(float(rnd % 2))
    return out


def med(values: list[float]) -> str:
    return f"{statistics.median(values):7.3f} ({min(values):.3f}-{max(values):.3f})"


def report(r: Rounds) -> None:
    hot = [d - b for d, b in zip(r["dagz"], r["base"], strict=True)]
    total = [h + c + e for h, c, e in zip(hot, r["drain"], r["end"], strict=True)]
    ratio = [d / b for d, b in zip(r["dagz"], r["base"], strict=True)]
    total_ratio = [(b + t) / b for b, t in zip(r["base"], total, strict=True)]
    print("  raw: us per span in each round (SDK alone, SDK + dagz, conversion, session end)")
    for i in range(len(r["base"])):
        first = "dagz first" if r["first"][i] else "baseline first"
        print(
            f"    round {i + 1} ({first}): {r['base'][i]:.3f} {r['dagz'][i]:.3f}"
            f" {r['drain'][i]:.3f} {r['end'][i]:.3f}"
        )
    print("  median (min-max) over the rounds, us per span:")
    print(f"  SDK span, no processor:                        {med(r['base'])}")
    print(f"  SDK span + dagz processor:                     {med(r['dagz'])}   ratio {med(ratio)}")
    print(f"  dagz on_end, in the application's thread:      {med(hot)}")
    print(f"  dagz conversion at each test's end:            {med(r['drain'])}")
    print(f"  dagz at the session's end (payload, summary):  {med(r['end'])}")
    print(
        f"  dagz total:                                    {med(total)}   ratio {med(total_ratio)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=20_000, help="spans per round")
    parser.add_argument("--per-test", type=int, default=50, help="spans per simulated test")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--suite", action="store_true", help="also time the example suite")
    parser.add_argument("--suite-runs", type=int, default=5)
    parser.add_argument("--suite-tests", type=int, default=200, help="test_many[n] tests")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2000, 1 suite pair")
    args = parser.parse_args()
    if args.quick:
        args.spans, args.rounds, args.suite_runs = 2000, 2, 1
    cleanup_at_exit(("pg",))
    n = args.spans - args.spans % args.per_test
    print(
        f"OTel span cost. Method: {n} spans per round in tests of {args.per_test} spans; 1"
        f" uncounted warm-up round, then {args.rounds} rounds, baseline and dagz alternating"
        " which goes first; median (min-max) over the rounds; raw rounds printed; us per span"
    )
    for trace in (False, True):
        print(f"-- {'with --dagz-trace' if trace else 'without --dagz-trace (summary only)'}")
        report(measure(n, args.per_test, args.rounds, trace))
    if args.suite:
        suite_ratio(args.suite_runs, args.suite_tests)


if __name__ == "__main__":
    main()
