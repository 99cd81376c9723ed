"""psycopg2 connect+close cycles with and without the shim, interleaved in one run (issue 2).

Two child processes (one with LD_PRELOAD=libdagz.so and DAGZ_WORKER=3, one without) each make
CYCLES connect+close cycles in blocks of BLOCK, after one uncounted warm-up block each; the blocks
alternate between the two (the order swaps every block) so both see the same machine load. The
preloaded child connects to ``dz_bench_<random>_conn`` and is rerouted to ``…_conn_jw03``; the
other connects to ``…_conn_jw03`` directly, so the server does the same work. That database is
created for the run and dropped at the end, also on failure. Reports each side's median and
min-max per connect, the ratio of the medians with the range of the per-block ratios, and the
raw block times. Target: <= 1.01.

    .venv/bin/python bench/connect_ratio.py [--cycles 2000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

import psycopg
from _names import cleanup_at_exit
from _names import name as bench_name

ROOT = Path(__file__).resolve().parents[1]
SHIM = ROOT / "target" / "release" / "libdagz.so"
BLOCK = 100
BASE = bench_name("conn")
TARGET_DB = f"{BASE}_jw03"

CHILD = r"""
import sys, time, psycopg2
db = sys.argv[1]
conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=db)
cur = conn.cursor()
cur.execute("SELECT current_database()")
print(cur.fetchone()[0], flush=True)  # where this child's connects land
conn.close()
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
    db = BASE if preload else TARGET_DB
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--cycles", type=int, default=int(os.environ.get("CYCLES", "2000")), help="per side"
    )
    parser.add_argument("--quick", action="store_true", help="200 cycles per side")
    args = parser.parse_args()
    cycles = 2 * BLOCK if args.quick else max(BLOCK, args.cycles - args.cycles % BLOCK)
    cleanup_at_exit(("pg",))
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as a:
        a.execute(f'CREATE DATABASE "{TARGET_DB}"'.encode())
    print(
        f"psycopg2 connect+close, {cycles} cycles per side in blocks of {BLOCK}. Method: one"
        " uncounted warm-up block each, then blocks alternating with and without the shim (the"
        " order swaps every block); median and min-max of the per-connect time; ratio of the"
        " medians with the range of the per-block ratios; raw block times printed"
    )
    with_shim, without = child(True), child(False)
    for side, proc in (("with", with_shim), ("without", without)):
        assert proc.stdout is not None
        landed = proc.stdout.readline().strip()
        if landed != TARGET_DB:
            sys.exit(
                f"connect_ratio: the child {side} the shim landed in {landed!r}, not {TARGET_DB}"
            )
    block(with_shim), block(without)  # warm-up: imports, first resolution, policy load
    times: dict[bool, list[float]] = {True: [], False: []}
    raw: list[str] = []
    for i in range(cycles // BLOCK):
        order = (True, False) if i % 2 == 0 else (False, True)
        for pre in order:
            times[pre].append(block(with_shim if pre else without))
        raw.append(
            f"    block {i + 1:>3}: "
            + ", ".join(
                f"{'with' if pre else 'without'} {times[pre][-1] / BLOCK * 1e3:.3f}"
                for pre in order
            )
        )
    for p in (with_shim, without):
        assert p.stdin is not None
        p.stdin.close()
        p.wait()
    per = {k: [t / BLOCK * 1e3 for t in v] for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in per.items()}
    ratios = sorted(a / b for a, b in zip(per[True], per[False], strict=True))
    print("  raw: ms per connect in each block, in its order")
    print("\n".join(raw))
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
