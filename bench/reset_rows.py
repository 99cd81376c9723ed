"""`--dagz-reset=rows` per test (issue 13): what the check and the reset cost before each test.

A base of 50 tables (serial / auto-increment keys, a text column), 10 of them holding 20 seed
rows each, is copied into a worker database (dagz's provision); `dagz.reset_rows` then manages
it as in a worker. Side by side in one run, repetitions interleaved:

* ``nothing changed``: the previous test changed no row; `before_test()` reads the signature and
  resets nothing (target: at most 1 ms);
* ``2 of 50 changed``: the previous test inserted 3 rows into a seeded table and 2 into an empty
  one (committed, not timed, on the test's own connection); `before_test()` finds them, resets
  those 2 tables (rows, counters) and reads the signature again (target: at most 10 ms);
* ``truncate (reference)``: `PG_CONFIG.truncate` / `MYSQL_CONFIG.truncate` after the same
  inserts, the per-test cleanup of a DAGZ-style ``prepare`` (it empties every table, seed rows
  included, on a fresh connection).

Each reset is checked (not timed): the two tables hold their seed rows again and the next insert
gets the base's next key. Names: ``dz_bench_rr_<hex>`` (dropped at the end).

    .venv/bin/python bench/reset_rows.py [--reps 30] [--engines pg,mysql]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
from collections.abc import Callable
from typing import Any, Protocol

import MySQLdb
import psycopg
from dagz import _shim, reset_rows
from dagz.config import MYSQL_CONFIG, PG_CONFIG
from dagz.engines import for_engine

os.environ["DAGZ_WORKER"] = "1"
os.environ["DAGZ_WORKER_COUNT"] = "4"

PG_KW: dict[str, object] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY_KW: dict[str, object] = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
N_TABLES, SEEDED, SEED_ROWS = 50, 10, 20
#: Issue 13's targets per test (medians).
TARGETS_MS = {"nothing changed": 1.0, "2 of 50 changed": 10.0}
#: What a reset after `_write` names at least: the two tables (PostgreSQL: and their sequences).
EXPECTED = {
    "pg": {"public.t0", "public.t20", "public.t0_id_seq", "public.t20_id_seq"},
    "mysql": {"t0", "t20"},
}


def _pg_setup(base: str) -> None:
    with psycopg.connect(dbname="postgres", autocommit=True, **PG_KW) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{base}"')
    with psycopg.connect(dbname=base, autocommit=True, **PG_KW) as conn:  # type: ignore[arg-type]
        for i in range(N_TABLES):
            conn.execute(f"CREATE TABLE t{i} (id serial PRIMARY KEY, v text NOT NULL)")
            if i < SEEDED:
                conn.execute(
                    f"INSERT INTO t{i} (v) SELECT 'seed ' || g"
                    f" FROM generate_series(1, {SEED_ROWS}) g"
                )


def _my_setup(base: str) -> None:
    conn = MySQLdb.connect(autocommit=True, **MY_KW)  # type: ignore[arg-type]
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{base}`")
    for i in range(N_TABLES):
        cur.execute(
            f"CREATE TABLE `{base}`.t{i}"
            " (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(50) NOT NULL)"
        )
        if i < SEEDED:
            values = ", ".join(f"('seed {g}')" for g in range(1, SEED_ROWS + 1))
            cur.execute(f"INSERT INTO `{base}`.t{i} (v) VALUES {values}")
    conn.close()


class _Cursor(Protocol):
    def execute(self, query: str, /) -> object: ...
    def fetchone(self) -> Any: ...  # noqa: ANN401 - a row of the driver's
    def close(self) -> None: ...


class _Conn(Protocol):
    def cursor(self) -> _Cursor: ...
    def close(self) -> None: ...


def _test_connection(engine: str, target: str) -> _Conn:
    if engine == "pg":
        return psycopg.connect(dbname=target, autocommit=True, **PG_KW)  # type: ignore[arg-type]
    return MySQLdb.connect(database=target, autocommit=True, **MY_KW)  # type: ignore[arg-type]


def _write(conn: _Conn) -> None:
    """What the previous test did: 3 rows into seeded t0, 2 into empty t20."""
    cur = conn.cursor()
    for _ in range(3):
        cur.execute("INSERT INTO t0 (v) VALUES ('test')")
    for _ in range(2):
        cur.execute("INSERT INTO t20 (v) VALUES ('test')")
    cur.close()


def _check(conn: _Conn) -> None:
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM t0")
    assert cur.fetchone()[0] == SEED_ROWS
    cur.execute("SELECT count(*) FROM t20")
    assert cur.fetchone()[0] == 0
    cur.execute("INSERT INTO t20 (v) VALUES ('probe')")
    cur.execute("SELECT max(id) FROM t20")
    assert cur.fetchone()[0] == 1, "counter not restored"
    cur.execute("DELETE FROM t20")
    cur.close()


def _ms(f: Callable[[], object]) -> float:
    t = time.perf_counter()
    f()
    return (time.perf_counter() - t) * 1000


def _run(engine: str, reps: int) -> dict[str, list[float]]:
    base = f"dz_bench_rr_{secrets.token_hex(4)}"
    target = f"{base}_jw01"
    code = _shim.ENGINE_POSTGRES if engine == "pg" else _shim.ENGINE_MYSQL
    kw = PG_KW if engine == "pg" else MY_KW
    eng = for_engine(code)
    times: dict[str, list[float]] = {"nothing changed": [], "2 of 50 changed": [], "truncate": []}
    try:
        (_pg_setup if engine == "pg" else _my_setup)(base)
        eng.provision(base, target, fresh=True, **kw)
        reset_rows.manage(code, base, target, dict(kw))
        conn = _test_connection(engine, target)
        cfg = PG_CONFIG if engine == "pg" else MYSQL_CONFIG
        for rep in range(reps):
            order = ["nothing changed", "2 of 50 changed", "truncate"]
            order = order[rep % 3 :] + order[: rep % 3]
            for what in order:
                if what == "nothing changed":
                    reset_rows.before_test()  # clean state first (not timed)
                    times[what].append(_ms(reset_rows.before_test))
                elif what == "2 of 50 changed":
                    reset_rows.before_test()
                    _write(conn)
                    done: list[tuple[str, list[str]]] = []
                    times[what].append(_ms(lambda done=done: done.extend(reset_rows.before_test())))
                    # MariaDB may also name a table whose statistics InnoDB recomputed meanwhile
                    assert len(done) == 1, done
                    assert EXPECTED[engine] <= set(done[0][1]), done
                    _check(conn)
                else:
                    _write(conn)
                    times[what].append(_ms(lambda: cfg.truncate(target, **kw)))
                    eng.provision(base, target, **kw)  # seed rows back (not timed)
                    reset_rows.close_all()
                    reset_rows.manage(code, base, target, dict(kw))
        conn.close()
    finally:
        reset_rows.close_all()
        _drop(engine, [target, base])
    return times


def _drop(engine: str, names: list[str]) -> None:
    """Drops what this benchmark made (its own `dz_bench_rr_` names)."""
    for name in names:
        assert name.startswith("dz_bench_rr_"), name
        if engine == "pg":
            with psycopg.connect(dbname="postgres", autocommit=True, **PG_KW) as conn:  # type: ignore[arg-type]
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            conn = MySQLdb.connect(autocommit=True, **MY_KW)  # type: ignore[arg-type]
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--engines", default="pg,mysql")
    parser.add_argument("--quick", action="store_true", help="3 repetitions (proves it runs)")
    args = parser.parse_args()
    if args.quick:
        args.reps = 3
    for engine in args.engines.split(","):
        times = _run(engine, args.reps)
        label = "PostgreSQL" if engine == "pg" else "MariaDB"
        print(f"{label}: {N_TABLES} tables, {SEEDED} seeded, {args.reps} repetitions")
        for what, values in times.items():
            med = statistics.median(values)
            spread = f"(min {min(values):.2f}, max {max(values):.2f})"
            target = TARGETS_MS.get(what)
            verdict = (
                ""
                if target is None
                else f"  target <= {target} ms: " + ("met" if med <= target else "MISSED")
            )
            print(f"  {what:>18}: median {med:7.2f} ms  {spread}{verdict}")


if __name__ == "__main__":
    main()
