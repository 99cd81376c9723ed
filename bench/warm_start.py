"""Warm start (issue 7): second-run worker provisioning, 4 workers, the 100-table schema.

The base is the provisioning benchmark's schema, ``bench/migrations/`` (100 alembic revisions:
123 foreign keys, 309 indexes on PostgreSQL, 10 seeded lookup tables), built once per engine.
Compared side by side in one run, repetitions interleaved (the order of the methods rotates
from one repetition to the next), each measurement the wall time from sending one task to each
of the 4 worker processes until the last one is done:

* ``warm``: dagz's ``create_worker_init([base])`` worker_init(N) in worker N, all 4 at once, on
  the worker databases left by the previous repetition — a second run: fingerprint the base
  (schema, migration rows, seed rows) and the worker database, compare with its stamp, keep it,
  and reset its rows to the base's. Before every ``warm`` measurement (not timed) each worker
  database gets what a test run leaves behind: rows in a table that is empty in the base, a
  seed row deleted and one added. Every ``warm`` measurement must log ``kept`` for all 4
  (checked; a rebuild would make the row meaningless);
* ``clone``: dagz's clone as it was before warm start, ``dagz.engines.postgres.clone`` /
  ``dagz.engines.mysql.clone`` (drop the leftover, ``CREATE DATABASE … TEMPLATE … STRATEGY
  FILE_COPY`` on PostgreSQL; ``SHOW CREATE`` replay + ``INSERT … SELECT`` keeping foreign keys,
  views and triggers on MySQL);
* ``fresh``: the same worker_init with ``DAGZ_FRESH=1`` (``--dagz-fresh``): drop, clone,
  fingerprint the copy, stamp it — what a run pays when the base changed;
* ``dump`` (MySQL): ``mysqldump --routines --events base | mysql wN`` after ``CREATE DATABASE wN``
  (Django's ``--parallel`` clone), 4 at once;
* what users have today for a second run, when Django is installed (otherwise these rows are
  left out with a printed note):
  - ``reuse-db``: pytest-django ``--reuse-db -n 4``: in each worker, Django's own
    ``django.test.utils.setup_databases(keepdb=True)`` for its test database ``…_rdb_gwN``, kept
    from the previous repetition, 4 at once;
  - ``keepdb``: Django's ``test --keepdb --parallel 4``: ``setup_databases(keepdb=True,
    parallel=4)`` in one process (the main test database and its 4 clones ``…_kdb_1…4``, kept).
  Their databases hold the same 100 tables (copied from the base once, not timed). These are
  lower bounds of what those tools cost: no Django app is installed, so ``migrate`` has no
  migration graph to load and check (a real project's has one), and nothing is serialized. They
  also do less: neither resets the rows a run left behind nor notices a changed base.

Targets: ``warm`` at least 10x faster than ``dump`` on MySQL, at least 5x faster than ``clone`` on
PostgreSQL. The ratios are printed per repetition (min-max) and of the medians. On PostgreSQL a
``CHECKPOINT`` (not timed) precedes every measurement, so no method pays for the dirty buffers
of the one before (``STRATEGY FILE_COPY`` starts with a checkpoint); it is timed and printed
with the raw times of every repetition, in each repetition's order.

All databases are named ``dz_bench_<random>_warm…`` and dropped at the end, also on failure.

The worker processes are not preloaded with libdagz.so (dagz's own connections run inside its
hard bypass anyway); ``DAGZ_WORKER=N`` gives worker N its name ``base_jwNN``.

    .venv/bin/python bench/warm_start.py [--reps 7] [--warmup 1] [--engines pg,mysql] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

import MySQLdb
from _names import cleanup_at_exit
from _names import name as bench_name
from _workers import (
    MY_KW,
    MY_URL,
    PG_KW,
    PG_URL,
    WORKERS,
    alembic_upgrade,
    dagz_init,
    dagz_worker,
    mysqldump_into,
    pg_admin,
    serve,
)
from _workers import Pool as WorkerPool

BASE = bench_name("warm")
#: Django installed: the pytest-django --reuse-db / Django --keepdb rows are measured.
DJANGO = importlib.util.find_spec("django") is not None
TARGETS = {"pg": ("clone", 5.0), "mysql": ("dump", 10.0)}

#: What a test run leaves in a worker database (a kept one must not show it to the next run).
LEFTOVERS = (
    "INSERT INTO organizations (order_status_id, payment_method_id, name)"
    " VALUES (1, 1, 'left-{n}-a'), (2, 2, 'left-{n}-b'), (1, 2, 'left-{n}-c')",
    "DELETE FROM countries WHERE code = 'US'",
    "INSERT INTO countries (code, label) VALUES ('X{n}', 'left over')",
)


# --------------------------------------------------------------------------------------------
# database helpers


def my_admin(db: str | None = None) -> MySQLdb.connections.Connection:
    kw = dict(MY_KW)
    if db:
        kw["database"] = db
    return MySQLdb.connect(**kw, autocommit=True)  # type: ignore[arg-type]


def my_exec(db: str | None, *statements: str) -> None:
    conn = my_admin(db)
    try:
        cur = conn.cursor()
        for statement in statements:
            cur.execute(statement)
    finally:
        conn.close()


def leave_leftovers(engine: str, target: str, num: int) -> str:
    """What a test run of worker `num` leaves in `target` (`LEFTOVERS`)."""
    statements = [s.format(n=num) for s in LEFTOVERS]
    if engine == "pg":
        with pg_admin(target) as c:
            for statement in statements:
                c.execute(statement.encode())
    else:
        my_exec(target, *statements)
    return target


def recreate(engine: str, db: str) -> None:
    if engine == "pg":
        with pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'.encode())
            conn.execute(f'CREATE DATABASE "{db}"'.encode())
    else:
        my_exec(None, f"DROP DATABASE IF EXISTS `{db}`", f"CREATE DATABASE `{db}`")


def drop(engine: str, db: str) -> None:
    if engine == "pg":
        with pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'.encode())
    else:
        my_exec(None, f"DROP DATABASE IF EXISTS `{db}`")


def build_base(engine: str) -> float:
    """The base, by ``alembic upgrade head`` of bench/migrations (setup, not compared)."""
    t0 = time.perf_counter()
    recreate(engine, BASE)
    alembic_upgrade((PG_URL if engine == "pg" else MY_URL).format(db=BASE))
    return time.perf_counter() - t0


# --------------------------------------------------------------------------------------------
# worker processes


def worker_main(num: int, conn: Connection) -> None:
    """One long-lived worker process, like an xdist worker: imports first, then tasks."""
    inits = dagz_worker(num, WORKERS, BASE)
    from dagz.engines import mysql as _mysql  # noqa: PLC0415
    from dagz.engines import postgres as _pg  # noqa: PLC0415

    def leftovers(engine: str, _run_dir: str) -> str:
        return leave_leftovers(engine, f"{BASE}_jw{num:02}", num)

    def clone(engine: str, _run_dir: str) -> str:
        target = f"{BASE}_fc_w{num}"
        how = (_pg if engine == "pg" else _mysql).clone(
            BASE, target, **(PG_KW if engine == "pg" else MY_KW)
        )
        return f"{target} {how}"

    def dump(_engine: str, _run_dir: str) -> str:
        target = f"{BASE}_dump_w{num}"
        recreate("mysql", target)
        mysqldump_into(BASE, target)
        return target

    def reuse_db(engine: str, _run_dir: str) -> str:
        """pytest-django --reuse-db in xdist worker gwN: Django's setup_databases(keepdb=True)
        for this worker's test database."""
        return django_keepdb(engine, f"{BASE}_rdb_gw{num}", parallel=0)

    tasks: dict[str, Callable[[str, str], str]] = {
        "reuse-db": reuse_db,
        "warm": lambda e, d: dagz_init(inits[e], num, fresh=False, run_dir=d),
        "fresh": lambda e, d: dagz_init(inits[e], num, fresh=True, run_dir=d),
        "clone": clone,
        "dump": dump,
        "leftovers": leftovers,
    }
    serve(conn, tasks)


def django_keepdb(engine: str, test_name: str, parallel: int) -> str:
    """Django's own ``setup_databases(keepdb=True, parallel=…)`` for one alias whose test
    database is `test_name` (kept from before); no apps installed, nothing serialized."""
    import django  # noqa: PLC0415
    from django.conf import settings  # noqa: PLC0415
    from django.db import connections  # noqa: PLC0415
    from django.test.utils import setup_databases  # noqa: PLC0415

    if not settings.configured:
        kw = {"HOST": "127.0.0.1", "TEST": {}}
        settings.configure(
            DATABASES={
                "default": {
                    **kw, "ENGINE": "django.db.backends.postgresql", "NAME": BASE,
                    "PORT": str(PG_KW["port"]), "USER": "postgres", "TEST": {},
                },
                "mysql": {  # set up on its own: no dependency on "default"
                    **kw, "ENGINE": "django.db.backends.mysql", "NAME": BASE,
                    "PORT": str(MY_KW["port"]), "USER": "root", "TEST": {"DEPENDENCIES": []},
                },
            },
            INSTALLED_APPS=[],
            USE_TZ=True,
        )  # fmt: skip
        django.setup()
    alias = "default" if engine == "pg" else "mysql"
    connections.databases[alias]["TEST"]["NAME"] = test_name
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        setup_databases(
            verbosity=0,
            interactive=False,
            keepdb=True,
            parallel=parallel,
            aliases={alias},
            serialized_aliases=set(),
        )
    connections.close_all()
    return test_name


class Pool(WorkerPool):
    def __init__(self) -> None:
        super().__init__(worker_main)

    def run(self, name: str, engine: str) -> float:
        """One task in each worker; a run directory of their own, as an xdist run's workers
        share (dagz reads the base once per run there)."""
        run_dir = tempfile.mkdtemp(prefix="dagz-bench-run-")
        try:
            return self.run_tasks({num: (name, engine, run_dir) for num in range(WORKERS)})
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# measurement and report


def checkpoint(engine: str) -> float:
    """PostgreSQL: seconds of one CHECKPOINT (MySQL: none, 0)."""
    if engine != "pg":
        return 0.0
    with pg_admin() as conn:
        t0 = time.perf_counter()
        conn.execute("CHECKPOINT")
        return time.perf_counter() - t0


def django_dbs() -> list[str]:
    """The test databases pytest-django --reuse-db (per xdist worker) and Django --keepdb
    --parallel 4 (main + 4 clones) find from their previous run."""
    names = [f"{BASE}_rdb_gw{n}" for n in range(WORKERS)]
    return names + [f"{BASE}_kdb"] + [f"{BASE}_kdb_{n + 1}" for n in range(WORKERS)]


def copy_for_django(engine: str) -> None:
    """Setup, not timed: Django's kept test databases hold the same 100 tables (copies of the
    base, made by dagz's plain clone)."""
    from dagz.engines import mysql as _mysql  # noqa: PLC0415
    from dagz.engines import postgres as _pg  # noqa: PLC0415

    for db in django_dbs():
        (_pg if engine == "pg" else _mysql).clone(BASE, db, **(PG_KW if engine == "pg" else MY_KW))


def worker_dbs() -> list[str]:
    names = [f"{BASE}_jw{n:02}" for n in range(WORKERS)]
    names += [f"{BASE}_fc_w{n}" for n in range(WORKERS)]
    return names + [f"{BASE}_dump_w{n}" for n in range(WORKERS)] + django_dbs()


def spread(values: Sequence[float]) -> str:
    med, lo, hi = (x * 1000 for x in (statistics.median(values), min(values), max(values)))
    return f"{med:8.1f} ms  {lo:7.1f} - {hi:.1f} ms"


def ratio_line(name: str, slow: Sequence[float], warm: Sequence[float], target: float) -> str:
    paired = [s / w for s, w in zip(slow, warm, strict=True)]
    med = statistics.median(slow) / statistics.median(warm)
    verdict = "met" if med >= target else "MISSED"
    return (
        f"  {name} / warm: {med:6.1f}x  (per repetition {min(paired):.1f}-{max(paired):.1f}x)"
        f"   target >= {target:g}x: {verdict}"
    )


LABELS = {
    "warm": "warm: worker_init keeps the copies (2nd run)",
    "clone": "clone: dagz's clone before warm start",
    "fresh": "fresh: worker_init with --dagz-fresh",
    "dump": "dump: mysqldump base | mysql wN",
    "reuse-db": "pytest-django --reuse-db: setup_databases(keepdb)",
    "keepdb": "Django --keepdb --parallel 4 (1 process)",
}


def measure(
    engine: str, pool: Pool, names: list[str], reps: int, warmup: int
) -> tuple[dict[str, list[float]], set[str], list[str]]:
    """Seconds per method, dagz's "kept" log lines, and the raw line of every repetition."""
    times: dict[str, list[float]] = {name: [] for name in names}
    kept_lines: set[str] = set()
    raw: list[str] = []
    for rep in range(warmup + reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        row = []
        for name in order:
            if name == "warm":
                pool.run("leftovers", engine)
            cp = checkpoint(engine)
            if name == "keepdb":  # Django's runner does this in its main process
                t0 = time.perf_counter()
                django_keepdb(engine, f"{BASE}_kdb", parallel=WORKERS)
                elapsed = time.perf_counter() - t0
            else:
                elapsed = pool.run(name, engine)
            row.append(
                f"{name} {elapsed * 1000:.1f}"
                + (f" (checkpoint {cp * 1000:.1f})" if engine == "pg" else "")
            )
            if name == "warm":
                lines = [r[2] for r in pool.last]
                if not all(" kept (fingerprint " in line for line in lines):
                    raise RuntimeError(f"warm start did not keep every copy: {lines}")
                kept_lines.update(lines)
            if rep >= warmup:
                times[name].append(elapsed)
        tag = f"warm-up {rep + 1}" if rep < warmup else f"rep {rep - warmup + 1}"
        raw.append(f"    {tag:>10}: " + ", ".join(row))
    return times, kept_lines, raw


def check_django_kept(engine: str) -> str:
    """Django really kept its test databases (did not recreate them empty): each still holds
    the base's 100 tables + alembic_version (+ Django's django_migrations)."""
    counts = {}
    for db in django_dbs():
        if engine == "pg":
            with pg_admin(db) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                ).fetchone()
        else:
            conn = my_admin()
            try:
                cur = conn.cursor()
                cur.execute(
                    "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (db,)
                )
                row = cur.fetchone()
            finally:
                conn.close()
        counts[db] = int(row[0]) if row else 0
    short = [f"{db}: {n}" for db, n in counts.items() if n < 101]
    if short:
        raise RuntimeError(f"Django did not keep its test databases: {short}")
    return f"checked: Django's {len(counts)} kept test databases still hold the 100 tables"


def run_engine(engine: str, pool: Pool, reps: int, warmup: int) -> None:
    title = "PostgreSQL" if engine == "pg" else "MySQL/MariaDB"
    for db in worker_dbs():
        drop(engine, db)
    base_build = build_base(engine)
    pool.run("fresh", engine)  # the worker databases of a first run
    names = ["warm", "clone", "fresh"] + (["dump"] if engine == "mysql" else [])
    if DJANGO:
        copy_for_django(engine)
        names += ["reuse-db", "keepdb"]
        # their first run (not timed): Django records its own bookkeeping in the kept databases
        pool.run("reuse-db", engine)
        django_keepdb(engine, f"{BASE}_kdb", parallel=WORKERS)
    times, kept_lines, raw = measure(engine, pool, names, reps, warmup)
    print(f"\n{title}: {server_line(engine)}")
    print(f"  base built once with alembic upgrade head (setup): {base_build:.2f} s")
    print(
        "  raw: each repetition in its order, ms"
        + (", and the CHECKPOINT before each" if engine == "pg" else "")
    )
    print("\n".join(raw))
    if not DJANGO:
        print("  Django is not installed here: the --reuse-db / --keepdb rows are left out")
    print(f"  {'method (4 workers at once)':<48} {'median':>11}  min - max")
    for name in names:
        print(f"  {LABELS[name]:<48} {spread(times[name])}")
    slow, target = TARGETS[engine]
    print(ratio_line(slow, times[slow], times["warm"], target))
    for name in names:
        if name not in ("warm", slow):
            print(ratio_line(name, times[name], times["warm"], 1).split("   target")[0])
    print(f"  every warm measurement kept all {WORKERS} copies; e.g. {sorted(kept_lines)[0]}")
    if DJANGO:
        print(f"  {check_django_kept(engine)}")
    for db in [BASE, *worker_dbs()]:
        drop(engine, db)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=7, help="counted repetitions (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted repetitions first")
    parser.add_argument("--engines", default="pg,mysql", help="pg, mysql or pg,mysql")
    parser.add_argument("--quick", action="store_true", help="2 repetitions, no warm-up")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.warmup = 2, 0
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    cleanup_at_exit()
    print(
        f"Warm start: second-run provisioning of {WORKERS} worker databases, 100-table schema"
        f" (bench/migrations); wall time; {os.cpu_count()} CPUs. Method: {args.reps} repetitions"
        f" after {args.warmup} uncounted warm-up, methods interleaved in an order that rotates"
        " every repetition; median and min-max; ratios of medians with the range of the"
        " per-repetition ratios; raw times printed"
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
