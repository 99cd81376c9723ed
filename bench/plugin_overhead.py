"""Plugin overhead, side by side in one run (issue 4's benchmark).

1. Per test that makes no connection: suites of 500 and 2500 trivial tests with the dagz plugin
   active (shim preloaded, PG_CONFIG configured) and disabled (`-p no:dagz`, shim still
   preloaded). One uncounted warm-up run of each of the 4 configurations, then REPS (5)
   repetitions in which the 4 run in an order that rotates every repetition (so "disabled" and
   "active" alternate which goes first); median and min-max of each, every run's time printed.
   The per-test cost is the slope between the two sizes (so the one-time cost of loading the
   plugin is not smeared over the tests); the one-time cost is reported separately.
2. The decision-callback round trip of a connect made inside a test whose `prepare` already ran
   for that database (C hook → ctypes → Python lifecycle → back; `prepare` itself is not
   included — it is the user's code, run once per test and database): the libpq hook pipeline
   (`dagz_pg_rewrite_conninfo`) called with the callback registered vs. with none (the shim's
   own declarative policy), in one preloaded process, ROUNDS (7) rounds of 20000 calls each,
   the two alternating which goes first; median and min-max of the per-call time, and the
   median of the per-round differences with their range.

    .venv/bin/python bench/plugin_overhead.py [--reps 5] [--rounds 7] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = Path(__file__).resolve().parent / "plugin_project"
SHIM = ROOT / "target" / "release" / "libdagz.so"


def run_suite(active: bool, n: int) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DAGZ_"))}
    env["LD_PRELOAD"] = str(SHIM)
    env["DAGZ_BENCH_TESTS"] = str(n)
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PROJECT)]
    if not active:
        args += ["-p", "no:dagz"]
    t0 = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


CALLBACK_CHILD = r"""
import sys, time
from dagz import _shim, _bypass
from dagz._state import STATE
from dagz.config import PG_CONFIG, on_decision
N = 20000
ROUNDS = int(sys.argv[1])
CONNINFO = "host=127.0.0.1 dbname=myapp"
prepared = []
def per_call():
    t0 = time.perf_counter()
    for _ in range(N):
        _shim.pg_rewrite_conninfo(CONNINFO)
    return (time.perf_counter() - t0) / N * 1e6
PG_CONFIG.configure(
    PG_CONFIG.default_rewrite_db_name, PG_CONFIG.default_should_reroute, prepared.append
)
STATE.active = STATE.reroute = True
STATE.current_test = "bench::test"    # inside one test
_bypass.callback_registered = True
_shim.set_decision_callback(on_decision)
first = _shim.pg_rewrite_conninfo(CONNINFO)  # the test's first connect: runs prepare, untimed
assert "myapp_jw01" in first and prepared == ["myapp_jw01"], (first, prepared)
def run(with_cb):
    _shim.set_decision_callback(on_decision if with_cb else None)
    return per_call()
run(False), run(True)                 # warm-up, not counted
for r in range(ROUNDS):
    order = (False, True) if r % 2 == 0 else (True, False)
    got = {cb: run(cb) for cb in order}
    first = "plain-first" if order[0] is False else "callback-first"
    print(f"{got[False]:.4f} {got[True]:.4f} {first}")
assert prepared == ["myapp_jw01"], prepared  # no measured call ran prepare
"""


def spread(values: list[float], fmt: str = ".3f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="counted repetitions (default 5)")
    parser.add_argument("--rounds", type=int, default=7, help="callback rounds (default 7)")
    parser.add_argument("--quick", action="store_true", help="2 repetitions, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.rounds = 2, 2
    sizes = (500, 2500)
    configs = [(act, n) for n in sizes for act in (False, True)]
    print(
        "Plugin overhead. Method: suites of 500 and 2500 no-connection tests, plugin disabled"
        f" (-p no:dagz) and active; 1 uncounted warm-up run of each, then {args.reps}"
        " repetitions of the 4, their order rotating every repetition; median and min-max;"
        " per-test cost = slope between the two sizes; raw run times printed"
    )
    for act, n in configs:  # warm-up
        run_suite(act, n)
    times: dict[tuple[bool, int], list[float]] = {c: [] for c in configs}
    print("  raw: seconds per run, in each repetition's order")
    for rep in range(args.reps):
        order = configs[rep % len(configs) :] + configs[: rep % len(configs)]
        row = []
        for act, n in order:
            times[(act, n)].append(run_suite(act, n))
            row.append(f"{n} {'active' if act else 'disabled'} {times[(act, n)][-1]:.3f}")
        print(f"    rep {rep + 1}: " + ", ".join(row))
    med = {k: statistics.median(v) for k, v in times.items()}
    slope = {
        act: (med[(act, sizes[1])] - med[(act, sizes[0])]) / (sizes[1] - sizes[0])
        for act in (False, True)
    }
    per_test = (slope[True] - slope[False]) * 1e6
    fixed = (med[(True, sizes[0])] - slope[True] * sizes[0]) - (
        med[(False, sizes[0])] - slope[False] * sizes[0]
    )
    print(f"no-connection tests, median (min-max) of {args.reps} rotated runs (seconds):")
    for n in sizes:
        d, a = times[(False, n)], times[(True, n)]
        paired = [x / y for x, y in zip(a, d, strict=True)]
        print(
            f"  {n} tests: plugin disabled {spread(d)}, active {spread(a)},"
            f" ratio {med[(True, n)] / med[(False, n)]:.3f}"
            f" (per repetition {min(paired):.3f}-{max(paired):.3f})"
        )
    print(f"  per test: disabled {slope[False] * 1e6:.1f} us, active {slope[True] * 1e6:.1f} us")
    print(f"  added per test without connections: {per_test:.1f} us (target <= 50 us)")
    print(f"  added once per run (plugin import, ctypes load): {fixed * 1e3:.0f} ms")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DAGZ_"))}
    env.update(LD_PRELOAD=str(SHIM), DAGZ_WORKER="1")
    out = subprocess.run(
        [sys.executable, "-c", CALLBACK_CHILD, str(args.rounds)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    rounds = [line.split() for line in out]
    plain = [float(r[0]) for r in rounds]
    cb = [float(r[1]) for r in rounds]
    diff = [c - p for p, c in zip(plain, cb, strict=True)]
    print(
        "decision for a connect (dagz_pg_rewrite_conninfo): 1 uncounted warm-up round each, then"
        f" {args.rounds} rounds x 20000 calls, the two alternating which goes first"
    )
    print("  raw: us per call in each round (declarative policy only, with the callback, order)")
    for i, r in enumerate(rounds):
        print(f"    round {i + 1}: {r[0]} {r[1]} {r[2]}")
    print(
        f"  declarative policy only {spread(plain, '.2f')} us,"
        f" with the Python callback {spread(cb, '.2f')} us"
    )
    print(
        "  callback round trip per connect inside a test, prepare already done (not included):"
        f" {statistics.median(diff):.2f} us (per round {min(diff):.2f}-{max(diff):.2f})"
    )


if __name__ == "__main__":
    main()
