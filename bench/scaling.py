"""Many workers on one server (issue 16): wall seconds for 4, 8 and 16 workers provisioning at once.

The base is the provisioning benchmark's 100-table schema (``bench/migrations/``: 100 alembic
revisions, 123 foreign keys, 10 seeded lookup tables), built once per engine. 16 long-lived
worker processes (as xdist's are) hold dagz's ``create_worker_init([base])``; a measurement sends
one task to each of the first N workers (N = 4, 8, 16) and takes the wall time until the last
one is done, the N workers sharing one run directory as an xdist run's do:

* ``fresh``: worker_init with ``DAGZ_FRESH=1`` (``--dagz-fresh``): drop, copy the base,
  fingerprint the copy, stamp it — what a run pays when the base changed;
* ``warm``: worker_init on the worker databases left by the previous measurement (a second run):
  fingerprint, keep, reset the rows. Before every ``warm`` measurement (not timed) each of the N
  worker databases gets what a test run leaves behind (bench/warm_start.py's `LEFTOVERS`), and
  every ``warm`` measurement must log ``kept`` for all N (checked).

Before the repetitions all 16 worker databases are made once (not timed). Every repetition
measures the 6 (N, method) pairs (for each ``--slots`` setting) in an order that rotates from
one repetition to the next; one uncounted warm-up repetition first. On PostgreSQL a
``CHECKPOINT`` (not timed, printed) precedes every measurement, so no measurement pays for the
dirty buffers of the one before. Printed: the raw seconds of every repetition in its order,
median and min-max per (N, method), and the ratio 16 workers / 4 workers of the medians (with
the range of the per-repetition ratios) against the target: at most 4.5x for 4x the work.

``DAGZ_PROVISION_SLOTS`` bounds how many provisionings run at once per server
(`dagz.engines.slots`; unset: no bound). ``--slots 4,0`` measures each setting, interleaved with
the others in the same rotation: a number or ``auto`` sets the variable, ``default`` unsets it.

All databases are named ``dz_bench_<random>_scale…`` and dropped at the end, also on failure.

    .venv/bin/python bench/scaling.py [--reps 5] [--warmup 1] [--engines pg,mysql]
                                      [--slots default] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

from _names import cleanup_at_exit
from _names import name as bench_name
from _workers import MY_URL, PG_URL, alembic_upgrade, dagz_init, dagz_worker, serve
from _workers import Pool as WorkerPool
from warm_start import checkpoint, drop, leave_leftovers, recreate

BASE = bench_name("scale")
COUNTS = (4, 8, 16)
MOST = max(COUNTS)
METHODS = ("fresh", "warm")
TARGET = 4.5


def worker_main(num: int, conn: Connection) -> None:
    """One long-lived worker process, like an xdist worker: imports first, then tasks."""
    inits = dagz_worker(num, MOST, BASE)

    def leftovers(engine: str, _run_dir: str, _slots: str = "") -> str:
        return leave_leftovers(engine, f"{BASE}_jw{num:02}", num)

    def provision(engine: str, run_dir: str, fresh: bool, slots: str) -> str:
        if slots == "default":
            os.environ.pop("DAGZ_PROVISION_SLOTS", None)
        else:
            os.environ["DAGZ_PROVISION_SLOTS"] = slots
        return dagz_init(inits[engine], num, fresh=fresh, run_dir=run_dir)

    tasks: dict[str, Callable[..., str]] = {
        "warm": lambda e, d, s: provision(e, d, False, s),
        "fresh": lambda e, d, s: provision(e, d, True, s),
        "leftovers": leftovers,
    }
    serve(conn, tasks)


class Pool(WorkerPool):
    def __init__(self) -> None:
        super().__init__(worker_main, MOST)

    def run(self, name: str, engine: str, count: int, *args: str) -> float:
        """One task in each of the first `count` workers, sharing a new run directory."""
        run_dir = tempfile.mkdtemp(prefix="dagz-bench-run-")
        try:
            return self.run_tasks({num: (name, engine, run_dir, *args) for num in range(count)})
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)


Pair = tuple[int, str, str]  # workers, method, DAGZ_PROVISION_SLOTS


def measure(
    engine: str, pool: Pool, settings: Sequence[str], reps: int, warmup: int
) -> tuple[dict[Pair, list[float]], list[str]]:
    """Seconds per (workers, method, slots setting), and the raw line of every repetition."""
    pairs = [(n, m, s) for s in settings for n in COUNTS for m in METHODS]
    times: dict[Pair, list[float]] = {p: [] for p in pairs}
    raw: list[str] = []
    for rep in range(warmup + reps):
        order = pairs[rep % len(pairs) :] + pairs[: rep % len(pairs)]
        row = []
        for count, method, slots in order:
            if method == "warm":
                pool.run("leftovers", engine, count, "")
            cp = checkpoint(engine)
            elapsed = pool.run(method, engine, count, slots)
            lines = [r[2] for r in pool.last]
            want = " kept (fingerprint " if method == "warm" else "rebuilt (forced"
            if not all(want in line for line in lines):
                raise RuntimeError(f"{method} x{count}: not every worker {want!r}: {lines}")
            tag = "" if len(settings) == 1 else f" slots={slots}"
            row.append(
                f"{method} x{count}{tag} {elapsed:.3f}"
                + (f" (checkpoint {cp:.3f})" if engine == "pg" else "")
            )
            if rep >= warmup:
                times[(count, method, slots)].append(elapsed)
        tag = f"warm-up {rep + 1}" if rep < warmup else f"rep {rep - warmup + 1}"
        raw.append(f"    {tag:>10}: " + ", ".join(row))
    return times, raw


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):7.3f} s  {min(values):7.3f} - {max(values):.3f} s"


def ratio_line(method: str, slots: str, times: dict[Pair, list[float]]) -> str:
    many, few = times[(MOST, method, slots)], times[(min(COUNTS), method, slots)]
    paired = [m / f for m, f in zip(many, few, strict=True)]
    med = statistics.median(many) / statistics.median(few)
    verdict = "met" if med <= TARGET else "MISSED"
    return (
        f"  {method}: {MOST} workers / {min(COUNTS)} workers: {med:5.2f}x"
        f"  (per repetition {min(paired):.2f}-{max(paired):.2f}x)"
        f"   target <= {TARGET:g}x: {verdict}"
    )


def worker_dbs() -> list[str]:
    return [f"{BASE}_jw{n:02}" for n in range(MOST)]


def run_engine(engine: str, pool: Pool, settings: Sequence[str], reps: int, warmup: int) -> None:
    title = "PostgreSQL" if engine == "pg" else "MySQL/MariaDB"
    for db in worker_dbs():
        drop(engine, db)
    recreate(engine, BASE)
    alembic_upgrade((PG_URL if engine == "pg" else MY_URL).format(db=BASE))
    setup = pool.run("fresh", engine, MOST, settings[0])  # the worker databases of a first run
    times, raw = measure(engine, pool, settings, reps, warmup)
    print(f"\n{title}: the 16 worker databases made once (setup) in {setup:.2f} s")
    print(
        "  raw: each repetition in its order, seconds"
        + (", and the CHECKPOINT before each" if engine == "pg" else "")
    )
    print("\n".join(raw))
    for slots in settings:
        print("  dagz's default slots" if slots == "default" else f"  DAGZ_PROVISION_SLOTS={slots}")
        print(
            f"  {'workers at once':<16} {'fresh: median':>15}  min - max      {'warm: median':>14}"
        )
        for count in COUNTS:
            fresh, warm_ = times[(count, "fresh", slots)], times[(count, "warm", slots)]
            print(f"  {count:<16} {spread(fresh)}   {spread(warm_)}")
        for method in METHODS:
            print(ratio_line(method, slots, times))
    for db in [BASE, *worker_dbs()]:
        drop(engine, db)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="counted repetitions (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted repetitions first")
    parser.add_argument("--engines", default="pg,mysql", help="pg, mysql or pg,mysql")
    parser.add_argument(
        "--slots",
        default="default",
        help="DAGZ_PROVISION_SLOTS settings to compare, interleaved: e.g. 4,0 (0: no bound);"
        " default: the variable unset (dagz's default: no bound)",
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition, no warm-up")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.warmup = 1, 0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    settings = [s.strip() for s in args.slots.split(",") if s.strip()]
    cleanup_at_exit()
    print(
        f"Scaling: {', '.join(map(str, COUNTS))} workers provisioning at once from one server,"
        f" 100-table schema (bench/migrations); wall time; {os.cpu_count()} CPUs,"
        f" load average {os.getloadavg()[0]:.1f} at the start. Method: {args.reps} repetitions"
        f" after {args.warmup} uncounted warm-up, the (workers, method, slots) triples in an"
        " order that rotates every repetition; median and min-max; ratios of medians with the"
        " range of the per-repetition ratios; raw times printed"
    )
    pool = Pool()
    try:
        for engine in engines:
            run_engine(engine, pool, settings, args.reps, args.warmup)
    finally:
        pool.close()
    print(f"  load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
