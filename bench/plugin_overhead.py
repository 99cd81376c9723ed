"""Plugin overhead, side by side in one run (issue 4's benchmark).

1. Per test that makes no connection: suites of 500 and 2500 trivial tests with the dagz plugin
   active (shim preloaded, PG_CONFIG configured) and disabled (`-p no:dagz`, shim still
   preloaded), interleaved, median of 5 runs each. The per-test cost is the slope between the two
   sizes (so the one-time cost of loading the plugin is not smeared over the tests); the one-time
   cost is reported separately.
2. Per first connection of a test: the decision callback round trip (C hook → ctypes → Python
   lifecycle → back), measured by calling the libpq hook pipeline (`dagz_pg_rewrite_conninfo`)
   with the callback registered inside a running test vs. with no callback (the shim's own
   declarative policy), in one preloaded process.
"""

from __future__ import annotations

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
import statistics, sys, time
from dagz import _shim, _bypass
from dagz._state import STATE
from dagz.config import PG_CONFIG, on_decision
N = 20000
def bench():
    best = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(N):
            _shim.pg_rewrite_conninfo("host=127.0.0.1 dbname=myapp")
        best.append((time.perf_counter() - t0) / N * 1e6)
    return statistics.median(best)
plain = bench()                       # no callback: the shim's declarative policy alone
PG_CONFIG.configure(PG_CONFIG.default_rewrite_db_name, PG_CONFIG.default_should_reroute, None)
STATE.active = True
STATE.current_test = "bench::test"    # inside a test, prepare already done for the db
_shim.set_decision_callback(on_decision)
_bypass.callback_registered = True
PG_CONFIG._prepared.add("myapp_jw01")
PG_CONFIG._worker_init_done = True
cb = bench()
print(f"{plain:.2f} {cb:.2f}")
"""


def main() -> None:
    sizes = (500, 2500)
    times: dict[tuple[bool, int], list[float]] = {(a, n): [] for a in (False, True) for n in sizes}
    for _ in range(5):
        for n in sizes:
            for act in (False, True):
                times[(act, n)].append(run_suite(act, n))
    med = {k: statistics.median(v) for k, v in times.items()}
    slope = {
        act: (med[(act, sizes[1])] - med[(act, sizes[0])]) / (sizes[1] - sizes[0])
        for act in (False, True)
    }
    per_test = (slope[True] - slope[False]) * 1e6
    fixed = (med[(True, sizes[0])] - slope[True] * sizes[0]) - (
        med[(False, sizes[0])] - slope[False] * sizes[0]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DAGZ_"))}
    env.update(LD_PRELOAD=str(SHIM), DAGZ_WORKER="1")
    out = subprocess.run(
        [sys.executable, "-c", CALLBACK_CHILD], env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    plain, cb = float(out[0]), float(out[1])
    print("no-connection tests, median of 5 interleaved runs (seconds):")
    for n in sizes:
        d, a = med[(False, n)], med[(True, n)]
        print(f"  {n} tests: plugin disabled {d:.3f}, active {a:.3f}, ratio {a / d:.3f}")
    print(f"  per test: disabled {slope[False] * 1e6:.1f} us, active {slope[True] * 1e6:.1f} us")
    print(f"  added per test without connections: {per_test:.1f} us (target <= 50 us)")
    print(f"  added once per run (plugin import, ctypes load): {fixed * 1e3:.0f} ms")
    print("decision for a connect (dagz_pg_rewrite_conninfo), median of 5 x 20000:")
    print(f"  declarative policy only {plain:.2f} us, with the Python callback {cb:.2f} us")
    print(f"  callback round trip per first connection of a test: {cb - plain:.2f} us")


if __name__ == "__main__":
    main()
