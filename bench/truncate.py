"""Per-test preparation on a 50-table schema with foreign keys (issue 6, bench 2).

A test wrote 5 rows into 2 of the 50 tables (2 ``customers``, 3 ``orders`` referencing them);
then the database is emptied for the next test. Compared side by side in one run, repetitions
interleaved (the order of the methods rotates every repetition), uncounted warm-up repetitions
first, each repetition inserting the rows again (committed, not timed) and then timing only the
cleanup; every method's median and min-max are printed, and every repetition's order and raw
times (the raw output):

* ``dagz``: ``PG_CONFIG.truncate(db)`` / ``MYSQL_CONFIG.truncate(db)``, the call a DAGZ-style
  ``prepare`` makes, on the per-worker database dagz made (``create_worker_init`` of worker 1).
  Whether dagz keeps its connection between calls (PostgreSQL does since the recorded run) or
  opens one per call is read from dagz after the warm-up and printed in the label; when it opens
  one per call, a fresh connect + close is also timed alone right after each call;
* ``cleaner``: DatabaseCleaner's default truncation, on an open connection: on PostgreSQL one
  ``TRUNCATE TABLE t1, …, t50 RESTART IDENTITY CASCADE``; on MySQL ``SET FOREIGN_KEY_CHECKS = 0``,
  one ``TRUNCATE TABLE t`` per table, ``SET FOREIGN_KEY_CHECKS = 1``;
* ``delete``: ``DELETE FROM t`` for each of the 50 tables (children first; on MySQL with
  foreign key checks off), one transaction, on an open connection. It does not reset
  identities, which the other two do;
* PostgreSQL only, a reference that is not dagz's API: the same round trips as
  ``dagz.engines.postgres.truncate``, built by its own helpers, on the benchmark's own connection
  kept open across repetitions — what dagz's API adds over its SQL.

Schema: 50 tables (serial/auto-increment keys, a unique column, an indexed foreign key column
per reference), 59 foreign keys, plus ``alembic_version`` holding one row, which every method
leaves alone. It is built in a base database ``dz_bench_<random>_trunc`` that dagz copies into
the worker database ``…_trunc_jw01``; both are dropped at the end, also on failure. After every
cleanup the two tables are checked empty (not timed), and the next insert shows whether the
identity restarted at 1.

    .venv/bin/python bench/truncate.py [--reps 40] [--warmup 3] [--engines pg,mysql] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from types import ModuleType

import MySQLdb
import psycopg
from _names import cleanup_at_exit
from _names import name as bench_name
from dagz.config import MYSQL_CONFIG, PG_CONFIG, DbConfig
from dagz.engines import mysql as _mysql
from dagz.engines import postgres as _pg
from dagz.engines.mysql import truncation as _my_truncation
from dagz.engines.postgres import truncation as _pg_truncation

# dagz reads the worker from the environment on every call: this process is worker 1, so
# `create_worker_init` makes (and `truncate` accepts) the per-worker database `BASE_jw01`.
os.environ["DAGZ_WORKER"] = "1"
os.environ["DAGZ_WORKER_COUNT"] = "4"
os.environ.pop("DAGZ_FRESH", None)

BASE = bench_name("trunc")
DB = f"{BASE}_jw01"
#: The servers (loopback, trust/no password); BENCH_PG_PORT / BENCH_MY_PORT pick other ones.
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
MY_PORT = int(os.environ.get("BENCH_MY_PORT", "3306"))
PG_KW: dict[str, object] = {"host": "127.0.0.1", "port": PG_PORT, "user": "postgres"}
MY_KW: dict[str, object] = {"host": "127.0.0.1", "port": MY_PORT, "user": "root"}

TABLES = [
    "customers", "orders", "organizations", "users", "addresses", "products", "categories",
    "order_lines", "payments", "invoices", "shipments", "carriers", "warehouses", "stock_levels",
    "suppliers", "purchase_orders", "carts", "cart_items", "coupons", "reviews", "tags",
    "product_tags", "price_lists", "price_items", "refunds", "returns", "return_items",
    "tickets", "ticket_messages", "articles", "subscriptions", "plans", "events", "webhooks",
    "deliveries", "notifications", "settings", "reports", "report_runs", "exports", "imports",
    "import_rows", "flags", "flag_overrides", "pages", "blocks", "menus", "menu_items",
    "sessions", "api_keys",
]  # fmt: skip
WRITTEN = ("customers", "orders")
N_FOREIGN_KEYS = 59


def foreign_keys() -> dict[str, list[str]]:
    """Parent tables of each table: `orders` → `customers`, every later table one reference to
    an earlier one, and 10 more; 59 in all (FKs point back only, so creation order works)."""
    rng = random.Random(50)
    refs: dict[str, list[str]] = {t: [] for t in TABLES}
    refs["orders"] = ["customers"]
    for i, table in enumerate(TABLES[2:], start=2):
        refs[table].append(rng.choice(TABLES[:i]))
    while sum(len(v) for v in refs.values()) < N_FOREIGN_KEYS:
        i = rng.randrange(3, len(TABLES))
        parent = rng.choice(TABLES[:i])
        if parent not in refs[TABLES[i]]:
            refs[TABLES[i]].append(parent)
    return refs


def ddl(engine: str) -> list[str]:
    statements = []
    for table, parents in foreign_keys().items():
        if engine == "pg":
            cols = [
                "id serial PRIMARY KEY",
                "name varchar(120) NOT NULL",
                "code varchar(40) UNIQUE",
                "created_at timestamptz NOT NULL DEFAULT now()",
            ]
            cols += [f"{p}_id integer REFERENCES {p}(id) ON DELETE CASCADE" for p in parents]
            statements.append(f"CREATE TABLE {table} ({', '.join(cols)})")
            statements += [f"CREATE INDEX ON {table} ({p}_id)" for p in parents]
        else:
            cols = [
                "id int AUTO_INCREMENT PRIMARY KEY",
                "name varchar(120) NOT NULL",
                "code varchar(40) UNIQUE",
                "created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP",
            ]
            cols += [f"{p}_id int" for p in parents]
            cols += [f"FOREIGN KEY ({p}_id) REFERENCES {p}(id) ON DELETE CASCADE" for p in parents]
            statements.append(f"CREATE TABLE {table} ({', '.join(cols)}) ENGINE=InnoDB")
    statements += [
        "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY)",
        "INSERT INTO alembic_version VALUES ('0042')",
    ]
    return statements


def make_worker_db(config: DbConfig, kw: dict[str, object]) -> str:
    """Worker 1's copy of `BASE`, made by dagz's own ``create_worker_init`` (dagz truncates only
    the worker databases it made); returns dagz's log line."""
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        config.create_worker_init([BASE], **kw)(1)
    return buf.getvalue().strip().splitlines()[-1] if buf.getvalue().strip() else ""


def keeps_connection(module: ModuleType) -> bool:
    """Whether dagz's truncate of this engine kept a connection open after its calls."""
    return bool(getattr(module, "_KEPT", None))


# --------------------------------------------------------------------------------------------
# engines


class Engine:
    """Connections and SQL of one engine; `cleanups` maps a method to its timed callable."""

    name = ""
    #: dagz's truncation module of this engine (does it keep a connection: `keeps_connection`).
    module: ModuleType

    def __init__(self) -> None:
        self.cleanups: dict[str, Callable[[], None]] = {}

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        raise NotImplementedError

    def insert(self) -> int:
        """The test's writes: 2 customers, 3 orders, committed; returns the first customer id."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def remaining(self) -> int:
        rows = self.execute(
            " + ".join(f"(SELECT count(*) FROM {t})" for t in WRITTEN).join(("SELECT ", ""))
        )
        return int(str(rows[0][0]))


class Pg(Engine):
    name = "PostgreSQL"
    module = _pg_truncation

    def __init__(self) -> None:
        super().__init__()
        with psycopg.connect(dbname="postgres", autocommit=True, **PG_KW) as admin:  # type: ignore[arg-type]
            admin.execute(f'CREATE DATABASE "{BASE}"')
            self.version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        with psycopg.connect(dbname=BASE, autocommit=True, **PG_KW) as base:  # type: ignore[arg-type]
            for statement in ddl("pg"):
                base.execute(statement.encode())
        self.made = make_worker_db(PG_CONFIG, PG_KW)
        self.writer = psycopg.connect(dbname=DB, autocommit=True, **PG_KW)  # type: ignore[arg-type]
        self.cleaner = psycopg.connect(dbname=DB, autocommit=True, **PG_KW)  # type: ignore[arg-type]
        all_tables = ", ".join(TABLES)
        self.truncate_sql = f"TRUNCATE TABLE {all_tables} RESTART IDENTITY CASCADE;"
        self.delete_sql = [f"DELETE FROM {t}" for t in reversed(TABLES)]
        self.cleanups = {
            "dagz": lambda: PG_CONFIG.truncate(DB, **PG_KW),
            "cleaner": lambda: self.cleaner.execute(self.truncate_sql.encode()),
            "delete": self.delete_all,
            "dagz_kept": self.dagz_sql_kept,
        }
        self.kept = _pg.connect(DB, **PG_KW)

    def dagz_sql_kept(self) -> None:
        """Reference, not dagz's API: the round trips of `dagz.engines.postgres.truncate`
        (discover, find the tables with rows, one DELETE + setval transaction), built by its own
        helpers, on a connection kept open — what `truncate` would cost if it did not connect
        every time."""
        found = _pg_truncation._fetch(self.kept, _pg_truncation._DISCOVER_SQL)
        tables = [(r[1], r[2]) for r in found if r[0] == "t" and r[2] not in _pg.KEEP_TABLES]
        hits = _pg_truncation._fetch(self.kept, _pg_truncation._rows_query(tables))
        with_rows = [tables[int(row[0])] for row in hits]
        sequences = [(int(r[3]), int(r[5])) for r in found if r[0] == "s"]
        statements = _pg_truncation._empty_statements(with_rows, False, sequences)
        _pg_truncation._execute(self.kept, f"BEGIN; {'; '.join(statements)}; COMMIT")

    def delete_all(self) -> None:
        with self.cleaner.transaction():
            for sql in self.delete_sql:
                self.cleaner.execute(sql.encode())

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        cur = self.writer.execute(sql.encode() if not params else sql, params or None)  # type: ignore[arg-type]
        return list(cur.fetchall()) if cur.description else []

    def insert(self) -> int:
        with self.writer.transaction():
            ids = [
                int(str(self.execute(
                    "INSERT INTO customers (name, code) VALUES (%s, %s) RETURNING id", (n, n)
                )[0][0]))
                for n in ("alice", "bob")
            ]  # fmt: skip
            for i in range(3):
                self.execute(
                    "INSERT INTO orders (name, customers_id) VALUES (%s, %s)", (f"o{i}", ids[i % 2])
                )
        return ids[0]

    def connect_close(self) -> None:
        _pg.connect(DB, **PG_KW).close()

    def close(self) -> None:
        self.writer.close()
        self.cleaner.close()
        self.kept.close()
        close_kept = getattr(_pg_truncation, "_close_kept", None)
        if close_kept is not None:  # dagz's kept connection, before the drop
            close_kept()
        with psycopg.connect(dbname="postgres", autocommit=True, **PG_KW) as admin:  # type: ignore[arg-type]
            for db in (DB, BASE):
                admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'.encode())


class My(Engine):
    name = "MySQL/MariaDB"
    module = _my_truncation

    def __init__(self) -> None:
        super().__init__()
        admin = MySQLdb.connect(**MY_KW, autocommit=True)  # type: ignore[arg-type]
        cur = admin.cursor()
        cur.execute(f"CREATE DATABASE `{BASE}`")
        cur.execute("SELECT VERSION()")
        self.version = str(cur.fetchone()[0])
        admin.close()
        base = MySQLdb.connect(**MY_KW, db=BASE, autocommit=True)  # type: ignore[arg-type]
        try:
            for statement in ddl("mysql"):
                base.cursor().execute(statement)
        finally:
            base.close()
        self.made = make_worker_db(MYSQL_CONFIG, MY_KW)
        self.writer = MySQLdb.connect(**MY_KW, db=DB, autocommit=True)  # type: ignore[arg-type]
        self.cleaner = MySQLdb.connect(**MY_KW, db=DB, autocommit=True)  # type: ignore[arg-type]
        self.cleanups = {
            "dagz": lambda: MYSQL_CONFIG.truncate(DB, **MY_KW),
            "cleaner": self.truncate_each,
            "delete": self.delete_all,
        }

    def truncate_each(self) -> None:
        cur = self.cleaner.cursor()
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in TABLES:
            cur.execute(f"TRUNCATE TABLE `{table}`")
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")

    def delete_all(self) -> None:
        cur = self.cleaner.cursor()
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        cur.execute("BEGIN")
        for table in reversed(TABLES):
            cur.execute(f"DELETE FROM `{table}`")
        cur.execute("COMMIT")
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        cur = self.writer.cursor()
        cur.execute(sql, tuple(params) or None)
        return list(cur.fetchall()) if cur.description else []

    def insert(self) -> int:
        cur = self.writer.cursor()
        cur.execute("BEGIN")
        ids = []
        for n in ("alice", "bob"):
            cur.execute("INSERT INTO customers (name, code) VALUES (%s, %s)", (n, n))
            ids.append(int(cur.lastrowid))
        for i in range(3):
            cur.execute(
                "INSERT INTO orders (name, customers_id) VALUES (%s, %s)", (f"o{i}", ids[i % 2])
            )
        cur.execute("COMMIT")
        return ids[0]

    def connect_close(self) -> None:
        _mysql.connect(DB, **MY_KW).close()

    def close(self) -> None:
        self.writer.close()
        self.cleaner.close()
        admin = MySQLdb.connect(**MY_KW, autocommit=True)  # type: ignore[arg-type]
        for db in (DB, BASE):
            admin.cursor().execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()


# --------------------------------------------------------------------------------------------
# measurement


LABELS = {
    "dagz_kept_conn": "dagz truncate (keeps its connection between calls)",
    "dagz_own_conn": "dagz truncate (opens a connection per call, included)",
    "cleaner_pg": "DatabaseCleaner default: TRUNCATE all RESTART IDENTITY CASCADE",
    "cleaner_mysql": "DatabaseCleaner default: TRUNCATE per table",
    "delete": "DELETE FROM every table, one transaction",
    "connect": "  of dagz: a fresh connect + close alone",
    "dagz_kept": "reference: dagz's SQL on the bench's kept connection (not its API)",
}
TARGET = 10.0


class Measured:
    """Seconds per cleanup (and per fresh connect, when dagz opens one per call), whether each
    method restarted the identities (seen by the insert that follows it), and the raw lines."""

    def __init__(self, names: Sequence[str], keeps: bool) -> None:
        self.keeps = keeps
        extra = [] if keeps else ["connect"]
        self.times: dict[str, list[float]] = {n: [] for n in [*names[:3], *extra, *names[3:]]}
        self.restarted: dict[str, bool] = {n: True for n in names}
        self.raw: list[str] = []


def measure(engine: Engine, reps: int, warmup: int) -> Measured:
    names = list(engine.cleanups)
    # One untimed call first: dagz's first truncate of the database (and its connection) is not
    # what a test pays after the first; then read whether dagz keeps its connection.
    engine.insert()
    engine.cleanups["dagz"]()
    out = Measured(names, keeps_connection(engine.module))
    previous = "dagz"
    for rep in range(warmup + reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        row: list[str] = []
        for name in order:
            first_id = engine.insert()
            if first_id != 1:
                out.restarted[previous] = False
            t0 = time.perf_counter()
            engine.cleanups[name]()
            elapsed = time.perf_counter() - t0
            if engine.remaining():
                raise RuntimeError(f"{engine.name}: {name} left rows in {WRITTEN}")
            previous = name
            row.append(f"{name} {elapsed * 1e3:.2f}")
            if name == "dagz" and not out.keeps:  # the connection dagz opened, alone, after
                t0 = time.perf_counter()
                engine.connect_close()
                connect = time.perf_counter() - t0
                row.append(f"(connect {connect * 1e3:.2f})")
                if rep >= warmup:
                    out.times["connect"].append(connect)
            if rep >= warmup:
                out.times[name].append(elapsed)
        tag = f"warm-up {rep + 1}" if rep < warmup else f"rep {rep - warmup + 1}"
        out.raw.append(f"    {tag:>10}: " + ", ".join(row))
    return out


def report(engine: Engine, key: str, m: Measured) -> None:
    times, restarted = m.times, m.restarted
    print(f"\n{engine.name} {engine.version}")
    print(f"  dagz's worker database: {engine.made}")
    print("  raw: each repetition in its order, ms per cleanup")
    for line in m.raw:
        print(line)
    print(f"  {'method':<66} {'median':>9}   min - max (ms)   identity reset")
    for name, values in times.items():
        if name == "dagz":
            label = LABELS["dagz_kept_conn" if m.keeps else "dagz_own_conn"]
        else:
            label = LABELS.get(f"{name}_{key}") or LABELS[name]
        reset = ("yes" if restarted[name] else "no") if name in restarted else ""
        ms = [v * 1e3 for v in values]
        print(
            f"  {label:<66} {statistics.median(ms):9.2f}   {min(ms):.2f} - {max(ms):.2f}   {reset}"
        )
    for base in ("cleaner", "delete"):
        paired = [b / d for b, d in zip(times[base], times["dagz"], strict=True)]
        med = statistics.median(times[base]) / statistics.median(times["dagz"])
        target = f"   target >= {TARGET:g}x: {'met' if med >= TARGET else 'MISSED'}"
        print(
            f"  {base} / dagz: {med:6.1f}x  (per repetition {min(paired):.1f}-{max(paired):.1f}x)"
            + (target if base == "cleaner" else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=40, help="counted repetitions (default 40)")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted repetitions first")
    parser.add_argument("--engines", default="pg,mysql", help="pg, mysql or pg,mysql")
    parser.add_argument("--quick", action="store_true", help="2 repetitions, 1 warm-up")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.warmup = 2, 1
    cleanup_at_exit()
    print(
        f"Per-test cleanup, 50 tables / {N_FOREIGN_KEYS} foreign keys, 5 rows written into 2"
        f" tables. Method: {args.reps} repetitions after {args.warmup} uncounted warm-up"
        " repetitions (and one untimed dagz call), methods interleaved in an order that rotates"
        " every repetition; median and min-max per method; ratios of medians with the range of"
        " the per-repetition ratios; raw times of every repetition printed"
    )
    for key in [e.strip() for e in args.engines.split(",") if e.strip()]:
        engine: Engine = Pg() if key == "pg" else My()
        try:
            report(engine, key, measure(engine, args.reps, args.warmup))
        finally:
            engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
