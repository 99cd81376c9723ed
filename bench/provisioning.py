"""Worker provisioning for 4 workers from a 100-table database built by alembic (issue 6, bench 1).

The schema is `bench/migrations/`: 100 alembic revisions, each creating one table (123 foreign
keys, 309 indexes on PostgreSQL, seeded lookup tables, every tenth revision also altering an
earlier table). What is compared, side by side in one run, repetitions interleaved (the order of
the methods rotates from one repetition to the next):

PostgreSQL
  * ``migrate``: each worker runs the migrations itself, all 4 at once (what pytest-django does
    under xdist): ``DROP DATABASE IF EXISTS`` its leftover, ``CREATE DATABASE``, then
    ``alembic.command.upgrade(cfg, "head")`` in the worker process;
  * ``dagz``: the real ``PG_CONFIG.create_worker_init([base], ...)`` worker_init,
    called in each worker for its worker number, all 4 at once (dagz clones the already migrated
    base into ``base_jwNN``; leftovers from the previous repetition are dropped by it),
    with ``DAGZ_FRESH=1`` (``--dagz-fresh``) so that it always builds the copies;
  * ``first run``: the base built by ``alembic upgrade`` first (worker 0), then the 4 dagz clones
    — what a run costs when the base database must be built too (not a target, for honesty);
  * ``warm`` (when dagz has warm start, issue 7): ``worker_init`` again without ``DAGZ_FRESH``,
    the worker databases of an earlier repetition in place and the base unchanged — a second run;
  * references (no dagz): the same drop-leftover + ``CREATE DATABASE … TEMPLATE base STRATEGY
    FILE_COPY`` (dagz's method) and ``STRATEGY WAL_LOG`` as raw SQL in each worker, 4 at once:
    what dagz adds over its SQL, and what the other strategy would cost on this server.
MySQL/MariaDB: the same (no raw references), plus
  * ``dump``: ``mysqldump --routines --events base | mysql wN`` per worker after ``CREATE
    DATABASE wN`` (what Django's ``--parallel`` does; Django runs them one after another, here
    they run 4 at once, the stronger baseline).

The 4 workers are 4 long-lived processes (as xdist's are): started once, they import alembic,
SQLAlchemy, the drivers and dagz before the first measurement, and each receives one task per
measurement; a measurement is the wall time from sending the 4 tasks until the last worker is
done. One warm-up repetition is not counted. On PostgreSQL a ``CHECKPOINT`` precedes every
measurement, so no method pays for the dirty buffers of the one before it (``CREATE DATABASE …
STRATEGY FILE_COPY`` starts with a checkpoint); it is timed too, and every PostgreSQL method is
reported both without it and with it (the checkpoint's time added: a fresh copy on a server
with dirty buffers pays something like it). Every repetition's order and raw times are printed.

All databases are named ``dz_bench_<random>_prov…`` (the base ``…_prov``, dagz's copies
``…_prov_jwNN``, the baselines' ``…_prov_mig_wN`` etc.) and dropped at the end, also on failure.

The worker processes are not preloaded with libdagz.so: dagz's clone connections run inside its
hard bypass anyway, and a preloaded shim would reroute the baselines' own connections. dagz loads
the library with ctypes for its naming rules (``DAGZ_WORKER=N`` is set in worker N).

    .venv/bin/python bench/provisioning.py [--reps 5] [--warmup 1] [--engines pg,mysql] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

import MySQLdb
from _names import cleanup_at_exit
from _names import name as bench_name
from _workers import (
    MY_KW,
    MY_URL,
    PG_KW,
    PG_URL,
    WORKERS,
    Task,
    alembic_upgrade,
    mysqldump_into,
    pg_admin,
    serve,
)
from _workers import Pool as WorkerPool

if TYPE_CHECKING:
    from dagz.config import DbConfig
    from MySQLdb.connections import Connection as MyConnection

BASE = bench_name("prov")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent package does not exist
        return False


#: dagz keeps worker databases whose base did not change (issue 7) when it has warm start
#: (`dagz.engines.warm`; `dagz._warm` before the engines were split by concern).
WARM_START = _importable("dagz.engines.warm") or _importable("dagz._warm")
TABLES = 101  # 100 + alembic_version
FOREIGN_KEYS = 123
HEAD = "0100"


# --------------------------------------------------------------------------------------------
# database helpers (used by the workers and the controller)


def my_admin() -> MyConnection:
    return MySQLdb.connect(**MY_KW, autocommit=True)  # type: ignore[arg-type]


def pg_recreate(db: str) -> None:
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')


def my_recreate(db: str) -> None:
    conn = my_admin()
    try:
        cur = conn.cursor()
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        cur.execute(f"CREATE DATABASE `{db}`")
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# worker processes


def worker_main(num: int, conn: Connection) -> None:
    """One long-lived worker process, like an xdist worker: imports first, then tasks."""
    os.environ["DAGZ_WORKER"] = str(num)
    os.environ["DAGZ_WORKER_COUNT"] = str(WORKERS)
    import alembic.command  # noqa: F401, PLC0415 - warm imports before the first measurement
    import sqlalchemy  # noqa: F401, PLC0415
    from dagz.config import MYSQL_CONFIG, PG_CONFIG  # noqa: PLC0415

    pg_init = PG_CONFIG.create_worker_init([BASE], **PG_KW)
    my_init = MYSQL_CONFIG.create_worker_init([BASE], **MY_KW)

    def dagz_call(init: Callable[[int], None], config: DbConfig, mode: str) -> str:
        # "fresh": DAGZ_FRESH=1, what --dagz-fresh exports (with warm start, a plain call would
        # keep the copy made in the previous repetition); "warm": a second run, nothing changed.
        if mode == "fresh":
            os.environ["DAGZ_FRESH"] = "1"
        else:
            os.environ.pop("DAGZ_FRESH", None)
        buf = io.StringIO()
        with contextlib.redirect_stderr(buf):
            init(num)
        target = config.reroute_db(BASE)
        return f"{target}: {buf.getvalue().strip()}"

    def migrate_pg(db: str) -> str:
        pg_recreate(db)
        alembic_upgrade(PG_URL.format(db=db))
        return db

    def migrate_my(db: str) -> str:
        my_recreate(db)
        alembic_upgrade(MY_URL.format(db=db))
        return db

    def raw_pg(strategy: str) -> str:
        db = f"{BASE}_raw_w{num}"
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{db}" TEMPLATE "{BASE}" STRATEGY {strategy}')
        return db

    def dump_my(db: str) -> str:
        my_recreate(db)
        mysqldump_into(BASE, db)
        return db

    tasks: dict[str, Callable[..., str]] = {
        "pg_dagz": lambda mode: dagz_call(pg_init, PG_CONFIG, mode),
        "my_dagz": lambda mode: dagz_call(my_init, MYSQL_CONFIG, mode),
        "pg_migrate": migrate_pg,
        "pg_raw": raw_pg,
        "my_migrate": migrate_my,
        "my_dump": dump_my,
    }
    serve(conn, tasks)


class Pool(WorkerPool):
    def __init__(self) -> None:
        super().__init__(worker_main)

    def run(
        self, make_task: Callable[[int], Task], workers: Sequence[int] = range(WORKERS)
    ) -> float:
        return self.run_tasks({num: make_task(num) for num in workers})


# --------------------------------------------------------------------------------------------
# methods


def pg_checkpoint() -> float:
    """Seconds of one ``CHECKPOINT`` (the connect not included)."""
    with pg_admin() as conn:
        t0 = time.perf_counter()
        conn.execute("CHECKPOINT")
        return time.perf_counter() - t0


def build_base(pool: Pool, engine: str) -> float:
    """Drop and rebuild the base database with `alembic upgrade head` in worker 0."""
    task = ("pg_migrate" if engine == "pg" else "my_migrate", BASE)
    return pool.run(lambda _num: task, workers=[0])


def method_table(engine: str, pool: Pool) -> dict[str, Callable[[], float]]:
    prefix = "pg" if engine == "pg" else "my"
    methods: dict[str, Callable[[], float]] = {
        "migrate": lambda: pool.run(lambda n: (f"{prefix}_migrate", f"{BASE}_mig_w{n}")),
    }
    if engine == "mysql":
        methods["dump"] = lambda: pool.run(lambda n: ("my_dump", f"{BASE}_dump_w{n}"))
    methods["dagz"] = lambda: pool.run(lambda _n: (f"{prefix}_dagz", "fresh"))
    methods["first run"] = lambda: build_base(pool, engine) + methods["dagz"]()
    if WARM_START:
        methods["warm"] = lambda: pool.run(lambda _n: (f"{prefix}_dagz", "warm"))
    if engine == "pg":
        for strategy in ("FILE_COPY", "WAL_LOG"):
            methods[strategy] = lambda s=strategy: pool.run(lambda _n: ("pg_raw", s))
    return methods


LABELS = {
    "migrate": "each worker runs alembic upgrade head, 4 at once",
    "dump": "mysqldump base | mysql wN per worker, 4 at once",
    "dagz": "dagz create_worker_init (worker_init(N)), 4 at once",
    "first run": "first run: alembic upgrade of the base + dagz",
    "warm": "dagz second run, nothing changed (warm start)",
    "FILE_COPY": "reference: raw CREATE DATABASE TEMPLATE, FILE_COPY",
    "WAL_LOG": "reference: raw CREATE DATABASE TEMPLATE, WAL_LOG",
}


def worker_dbs(engine: str) -> list[str]:
    names = [f"{BASE}_jw{n:02}" for n in range(WORKERS)]
    names += [f"{BASE}_mig_w{n}" for n in range(WORKERS)]
    if engine == "pg":
        names += [f"{BASE}_raw_w{n}" for n in range(WORKERS)]
    if engine == "mysql":
        names += [f"{BASE}_dump_w{n}" for n in range(WORKERS)]
    return names


def verify(engine: str) -> str:
    """Every provisioned database holds the full schema, its foreign keys and the seed rows."""
    bad = []
    for db in [BASE, *worker_dbs(engine)]:
        if engine == "pg":
            with pg_admin(db) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'),"
                    " (SELECT count(*) FROM pg_constraint WHERE contype = 'f'),"
                    " (SELECT version_num FROM alembic_version),"
                    " (SELECT count(*) FROM countries)"
                ).fetchone()
        else:
            conn = my_admin()
            try:
                cur = conn.cursor()
                cur.execute(
                    "SELECT (SELECT count(*) FROM information_schema.TABLES"
                    "         WHERE TABLE_SCHEMA = %s),"
                    " (SELECT count(*) FROM information_schema.REFERENTIAL_CONSTRAINTS"
                    "   WHERE CONSTRAINT_SCHEMA = %s),"
                    f" (SELECT version_num FROM `{db}`.alembic_version),"
                    f" (SELECT count(*) FROM `{db}`.countries)",
                    (db, db),
                )
                row = cur.fetchone()
            finally:
                conn.close()
        if tuple(row or ()) != (TABLES, FOREIGN_KEYS, HEAD, 13):
            bad.append(f"{db}: {row}")
    if bad:
        raise RuntimeError("provisioned databases differ from the schema: " + "; ".join(bad))
    return (
        f"checked: all {1 + len(worker_dbs(engine))} databases hold {TABLES - 1} tables +"
        f" alembic_version at {HEAD}, {FOREIGN_KEYS} foreign keys, the seed rows"
    )


def drop_all(engine: str) -> None:
    for db in [BASE, *worker_dbs(engine)]:
        if engine == "pg":
            with pg_admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        else:
            conn = my_admin()
            try:
                conn.cursor().execute(f"DROP DATABASE IF EXISTS `{db}`")
            finally:
                conn.close()


def server_line(engine: str) -> str:
    if engine == "pg":
        with pg_admin() as conn:
            row = conn.execute(
                "SELECT split_part(version(), ' on ', 1), current_setting('fsync'),"
                " pg_size_pretty(pg_database_size(%s))",
                (BASE,),
            ).fetchone()
        assert row is not None
        return f"{row[0]} (fsync={row[1]}), base database {row[2]}"
    conn = my_admin()
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT VERSION(), ROUND(SUM(DATA_LENGTH + INDEX_LENGTH) / 1048576, 1)"
            " FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            (BASE,),
        )
        version, size = cur.fetchone()
    finally:
        conn.close()
    return f"MariaDB/MySQL {version}, base database {size} MB of tables and indexes"


# --------------------------------------------------------------------------------------------
# report


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):7.3f} s   {min(values):7.3f} - {max(values):.3f} s"


def ratio_line(
    name: str, base: Sequence[float], dagz: Sequence[float], target: float, of: str = "dagz"
) -> str:
    paired = [b / d for b, d in zip(base, dagz, strict=True)]
    med = statistics.median(base) / statistics.median(dagz)
    verdict = "met" if med >= target else "MISSED"
    return (
        f"  {name} / {of}: {med:5.1f}x  (per repetition {min(paired):.1f}-{max(paired):.1f}x)"
        f"   target >= {target:g}x: {verdict}"
    )


class Measured:
    """The seconds of each method, the last dagz log lines, and how often warm start kept."""

    def __init__(self, names: Sequence[str]) -> None:
        self.times: dict[str, list[float]] = {name: [] for name in names}
        #: PostgreSQL: the CHECKPOINT right before each measurement of a method.
        self.checkpoints: dict[str, list[float]] = {name: [] for name in names}
        self.samples: dict[str, str] = {}
        self.warm_kept = 0
        self.raw: list[str] = []


def measure(engine: str, pool: Pool, reps: int, warmup: int) -> Measured:
    methods = method_table(engine, pool)
    names = list(methods)
    out = Measured(names)
    for rep in range(warmup + reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        row: list[str] = []
        for name in order:
            checkpoint = pg_checkpoint() if engine == "pg" else 0.0
            elapsed = methods[name]()
            row.append(f"{name} {elapsed:.3f}")
            if engine == "pg":
                row[-1] += f" (checkpoint {checkpoint:.3f})"
            if rep < warmup:
                continue
            out.times[name].append(elapsed)
            out.checkpoints[name].append(checkpoint)
            if name in ("dagz", "warm"):
                out.samples[name] = pool.last[WORKERS - 1][2]
            if name == "warm" and all(" kept" in r[2] for r in pool.last):
                out.warm_kept += 1
        tag = f"warm-up {rep + 1}" if rep < warmup else f"rep {rep - warmup + 1}"
        out.raw.append(f"    {tag:>10}: " + ", ".join(row))
    return out


def run_engine(engine: str, pool: Pool, reps: int, warmup: int) -> None:
    title = "PostgreSQL" if engine == "pg" else "MySQL/MariaDB"
    drop_all(engine)
    base_build = build_base(pool, engine)
    m = measure(engine, pool, reps, warmup)
    times = m.times
    if "warm" in times and not m.warm_kept:  # this dagz rebuilt: not a warm start
        del times["warm"]
        m.samples.pop("warm", None)
    print(f"\n{title}: {server_line(engine)}")
    print(f"  building the base once with alembic (setup, 1 process): {base_build:.2f} s")
    print(
        "  raw: each repetition in its order, seconds"
        + (", and the CHECKPOINT before each" if engine == "pg" else "")
    )
    for line in m.raw:
        print(line)
    print(f"  {'method':<68} {'median':>9}   min - max")
    for name, values in times.items():
        print(f"  {LABELS[name]:<68} {spread(values)}")
    with_cp = {  # PostgreSQL: the CHECKPOINT before each measurement added (MySQL: 0)
        name: [v + c for v, c in zip(values, m.checkpoints[name], strict=True)]
        for name, values in times.items()
    }
    if engine == "pg":
        print("  the same with the CHECKPOINT before each measurement added (its time included):")
        for name, total in with_cp.items():
            print(f"  {LABELS[name] + ' + CHECKPOINT':<68} {spread(total)}")
    print(ratio_line("migrate", times["migrate"], times["dagz"], 10 if engine == "pg" else 3))
    if engine == "pg":
        print(
            ratio_line("migrate", with_cp["migrate"], with_cp["dagz"], 10).replace(
                "  migrate / dagz:", "  with CHECKPOINT, migrate / dagz:"
            )
        )
    if engine == "mysql":
        print(ratio_line("dump", times["dump"], times["dagz"], 1))
    if WARM_START and "warm" not in times:
        print("  warm start: this dagz rebuilt the copies on every second run (row left out)")
    elif "warm" in times:  # issue 7's targets for the second run
        print(f"  warm start: all 4 copies kept in {m.warm_kept} of {reps} repetitions")
        if engine == "pg":
            print(ratio_line("dagz fresh", times["dagz"], times["warm"], 5, "warm"))
            print(
                ratio_line("dagz fresh", with_cp["dagz"], with_cp["warm"], 5, "warm").replace(
                    "  dagz fresh /", "  with CHECKPOINT, dagz fresh /"
                )
            )
        else:
            print(ratio_line("dump", times["dump"], times["warm"], 10, "warm"))
    print(f"  {verify(engine)}")
    for name, sample in m.samples.items():
        print(f"  dagz log, {name}, worker 3, last repetition: {sample}")
    drop_all(engine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="counted repetitions (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted repetitions first")
    parser.add_argument("--engines", default="pg,mysql", help="pg, mysql or pg,mysql")
    parser.add_argument("--quick", action="store_true", help="2 repetitions, no warm-up")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.warmup = 2, 0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    cleanup_at_exit()
    print(
        f"Worker provisioning: {WORKERS} workers, 100-table schema from 100 alembic revisions;"
        f" wall time. Method: {args.reps} repetitions after {args.warmup} uncounted warm-up,"
        " methods interleaved in an order that rotates every repetition; median and min-max;"
        " ratios of medians with the range of the per-repetition ratios; PostgreSQL: a timed"
        " CHECKPOINT before each measurement, reported without and with it; raw times printed"
    )
    pool = Pool()
    try:
        for engine in engines:
            run_engine(engine, pool, args.reps, args.warmup)
    finally:
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
