"""Unique names for what the benchmarks create on the shared servers, and their cleanup.

Every database a benchmark makes is named ``dz_bench_<8 hex>_…`` (`RUN`, one random part per
benchmark run, inherited by child processes through ``DZ_BENCH_RUN``), so that two runs on the
same servers never touch each other's databases or a user's; `drop_run` drops every database
whose name starts with `RUN` on both servers, and `cleanup_at_exit` makes that happen at exit,
also after an exception, ``SIGTERM`` or ``SIGHUP``.

From a shell script::

    RUN=$(.venv/bin/python bench/_names.py new)          # dz_bench_1a2b3c4d
    trap '.venv/bin/python bench/_names.py drop "$RUN"' EXIT
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import signal
import sys
from types import FrameType

#: This run's prefix; child processes (multiprocessing spawn, subprocesses) inherit it.
RUN = os.environ.setdefault("DZ_BENCH_RUN", f"dz_bench_{secrets.token_hex(4)}")
_VALID = re.compile(r"^dz_bench_[0-9a-f]{8}$")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
MY_PORT = int(os.environ.get("BENCH_MY_PORT", "3306"))


def name(part: str) -> str:
    """``dz_bench_<hex>_<part>``: a database name of this run."""
    return f"{RUN}_{part}"


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


def drop_run(run: str = RUN, engines: tuple[str, ...] = ("pg", "mysql")) -> list[str]:
    """Drops every database named `run` or ``run_…`` on both servers; returns their names.
    Refuses any prefix that is not a benchmark run's (``dz_bench_`` + 8 hex)."""
    if not _VALID.match(run):
        raise ValueError(f"refusing to drop databases outside dz_bench_<8 hex>_…: {run!r}")
    dropped: list[str] = []
    if "pg" in engines:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(
            host="127.0.0.1", port=PG_PORT, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
                (run, _like(run + "_")),
            ).fetchall()
            for (db,) in rows:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'.encode())
                dropped.append(f"pg:{db}")
    if "mysql" in engines:
        import MySQLdb  # noqa: PLC0415

        conn = MySQLdb.connect(host="127.0.0.1", port=MY_PORT, user="root", autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
                " WHERE SCHEMA_NAME = %s OR SCHEMA_NAME LIKE %s",
                (run, _like(run + "_")),
            )
            for (db,) in cur.fetchall():
                cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
                dropped.append(f"mysql:{db}")
        finally:
            conn.close()
    return dropped


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    sys.exit(128 + signum)  # SystemExit: `finally` blocks and atexit handlers run


def cleanup_at_exit(engines: tuple[str, ...] = ("pg", "mysql")) -> None:
    """Drop this run's databases when the process exits (normally, by an exception, SIGTERM or
    SIGHUP); only in the process that calls it (not in spawned workers)."""
    pid = os.getpid()

    def cleanup() -> None:
        if os.getpid() != pid:
            return
        try:
            dropped = drop_run(RUN, engines)
        except Exception as exc:  # report; never mask the benchmark's own error
            print(f"bench: could not drop the databases {RUN}_*: {exc}", file=sys.stderr)
        else:
            if dropped:
                print(f"(dropped this run's {len(dropped)} databases {RUN}_*)")

    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)


def main(argv: list[str]) -> int:
    if argv[:1] == ["new"]:
        print(f"dz_bench_{secrets.token_hex(4)}")
        return 0
    if len(argv) == 2 and argv[0] == "drop":
        dropped = drop_run(argv[1])
        if dropped:
            print(f"(dropped this run's {len(dropped)} databases {argv[1]}_*)")
        return 0
    print("usage: bench/_names.py new | drop dz_bench_<8 hex>", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
