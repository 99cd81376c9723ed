"""psycopg2 connect+close cycles with and without the shim, interleaved in one run (issue 2).

Two child processes (one with LD_PRELOAD=libdagz.so and DAGZ_WORKER=3, one without) each make
CYCLES connect+close cycles in blocks of BLOCK; the blocks alternate between the two so both see
the same machine load. The preloaded child is rerouted to myapp_jw03, the other connects to
myapp_jw03 directly, so the server does the same work. Reports the ratio of the median block
times and its spread. Target: <= 1.01.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIM = ROOT / "target" / "release" / "libdagz.so"
CYCLES = int(os.environ.get("CYCLES", "2000"))
BLOCK = 100

CHILD = r"""
import sys, time, psycopg2
db = sys.argv[1]
for line in sys.stdin:
    n = int(line)
    t0 = time.perf_counter()
    for _ in range(n):
        psycopg2.connect(host="127.0.0.1", user="postgres", dbname=db).close()
    print(time.perf_counter() - t0, flush=True)
"""


def child(preload: bool) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGZ_", "PYTEST_"))}
    if preload:
        env.update(LD_PRELOAD=str(SHIM), DAGZ_WORKER="3")
    db = "myapp" if preload else "myapp_jw03"
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, db],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def block(proc: subprocess.Popen[str]) -> float:
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(f"{BLOCK}\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def main() -> None:
    with_shim, without = child(True), child(False)
    block(with_shim), block(without)  # warm-up: imports, first resolution, policy load
    times: dict[bool, list[float]] = {True: [], False: []}
    for i in range(CYCLES // BLOCK):
        order = (True, False) if i % 2 == 0 else (False, True)
        for pre in order:
            times[pre].append(block(with_shim if pre else without))
    for p in (with_shim, without):
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    per = {k: [t / BLOCK * 1e3 for t in v] for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in per.items()}
    ratios = sorted(a / b for a, b in zip(per[True], per[False], strict=True))
    print(f"psycopg2 connect+close, {CYCLES} cycles each, blocks of {BLOCK} interleaved")
    print(
        f"  without shim: median {med[False]:.3f} ms ({min(per[False]):.3f}-{max(per[False]):.3f})"
    )
    print(f"  with shim:    median {med[True]:.3f} ms ({min(per[True]):.3f}-{max(per[True]):.3f})")
    print(
        f"  ratio with/without: {med[True] / med[False]:.3f} "
        f"(per block {ratios[0]:.3f}-{ratios[-1]:.3f}, target <= 1.01)"
    )


if __name__ == "__main__":
    main()
