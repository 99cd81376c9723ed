"""What the provisioning benchmarks share (bench/provisioning.py, bench/warm_start.py): the
servers, the alembic base, Django's `mysqldump | mysql`, and 4 long-lived worker processes that
each run one task per measurement, as xdist workers would."""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "bench" / "migrations"
WORKERS = 4
#: The servers (loopback, trust/no password); BENCH_PG_PORT / BENCH_MY_PORT pick other ones.
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
MY_PORT = int(os.environ.get("BENCH_MY_PORT", "3306"))
PG_KW: dict[str, object] = {"host": "127.0.0.1", "port": PG_PORT, "user": "postgres"}
MY_KW: dict[str, object] = {"host": "127.0.0.1", "port": MY_PORT, "user": "root"}
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:{PG_PORT}/{{db}}"
MY_URL = f"mysql+mysqldb://root@127.0.0.1:{MY_PORT}/{{db}}"

Task = tuple[str, ...]
Result = tuple[str, float, str]  # ("ok" | "error", seconds in the worker, detail)


def pg_admin(db: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dbname=db, autocommit=True, **PG_KW)  # type: ignore[arg-type]


def alembic_upgrade(url: str) -> None:
    """``alembic upgrade head`` of bench/migrations into the database at `url`."""
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    with contextlib.redirect_stdout(io.StringIO()):
        command.upgrade(cfg, "head")


DUMP = shutil.which("mysqldump") or "mariadb-dump"
LOAD = shutil.which("mysql") or "mariadb"


def mysqldump_into(base: str, target: str) -> None:
    """Django's MySQL clone_test_db: ``mysqldump --routines --events base | mysql target``."""
    args = [f"--host={MY_KW['host']}", f"--port={MY_KW['port']}", f"--user={MY_KW['user']}"]
    dump = subprocess.Popen([DUMP, *args, "--routines", "--events", base], stdout=subprocess.PIPE)
    load = subprocess.run([LOAD, *args, target], stdin=dump.stdout, check=False)
    assert dump.stdout is not None
    dump.stdout.close()
    if dump.wait() != 0 or load.returncode != 0:
        raise RuntimeError(f"mysqldump {base} | mysql {target} failed")


def serve(conn: Connection, tasks: dict[str, Callable[..., str]]) -> None:
    """A worker's loop: say ready, then run each `(name, *args)` sent until None arrives, and
    answer each with a `Result` (the seconds measured inside the worker)."""
    conn.send(("ok", 0.0, "ready"))
    while True:
        task: Task | None = conn.recv()
        if task is None:
            return
        name, *args = task
        t0 = time.perf_counter()
        try:
            detail = tasks[name](*args)
        except Exception as exc:
            conn.send(("error", time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"))
        else:
            conn.send(("ok", time.perf_counter() - t0, detail))


def dagz_worker(num: int, count: int, base: str) -> dict[str, Callable[[int], None]]:
    """In a worker process: this worker's environment (``DAGZ_WORKER=num``, the count, no
    ``DAGZ_FRESH``) and dagz's ``create_worker_init([base])`` for each engine ("pg", "mysql")."""
    os.environ["DAGZ_WORKER"] = str(num)
    os.environ["DAGZ_WORKER_COUNT"] = str(count)
    os.environ.pop("DAGZ_FRESH", None)
    from dagz.config import MYSQL_CONFIG, PG_CONFIG  # noqa: PLC0415

    return {
        "pg": PG_CONFIG.create_worker_init([base], **PG_KW),
        "mysql": MYSQL_CONFIG.create_worker_init([base], **MY_KW),
    }


def dagz_init(init: Callable[[int], None], num: int, *, fresh: bool, run_dir: str) -> str:
    """Worker `num`'s dagz worker_init, as in an xdist run: ``DAGZ_FRESH=1`` when `fresh` (what
    ``--dagz-fresh`` exports), ``DAGZ_RUN_DIR`` the run's directory (the controller's: the
    workers share it, and dagz reads the base once per run there); dagz's log line, without
    its ``PG_CONFIG: worker N:`` head."""
    if fresh:
        os.environ["DAGZ_FRESH"] = "1"
    os.environ["DAGZ_RUN_DIR"] = run_dir
    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf):
            init(num)
    finally:
        os.environ.pop("DAGZ_FRESH", None)
        os.environ.pop("DAGZ_RUN_DIR", None)
    return buf.getvalue().strip().split(": ", 1)[-1]


class Pool:
    """`workers` worker processes (default 4), each running `target(num, conn)` (which calls
    `serve`)."""

    def __init__(self, target: Callable[[int, Connection], None], workers: int = WORKERS) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[mp.process.BaseProcess] = []
        self.conns: list[Connection] = []
        #: The workers' results of the last `run_tasks`.
        self.last: list[Result] = []
        for num in range(workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=target, args=(num, child), daemon=True)
            proc.start()
            self.procs.append(proc)
            self.conns.append(parent)
        for num, conn in enumerate(self.conns):
            self._check(num, conn.recv())

    @staticmethod
    def _check(num: int, result: Result) -> Result:
        if result[0] != "ok":
            raise RuntimeError(f"worker {num}: {result[2]}")
        return result

    def run_tasks(self, tasks: dict[int, Task]) -> float:
        """Sends each worker its task, waits for all; the wall time from first send to last
        answer."""
        t0 = time.perf_counter()
        for num, task in tasks.items():
            self.conns[num].send(task)
        results = [self.conns[num].recv() for num in tasks]
        elapsed = time.perf_counter() - t0
        for num, result in zip(tasks, results, strict=True):
            self._check(num, result)
        self.last = results
        return elapsed

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(None)
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
