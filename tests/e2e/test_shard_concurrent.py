"""Shards sharing one database server at the same time (issue 16 acceptance): 3 shards x 2
workers of one project started together against the one pair of servers get disjoint worker
databases with no configuration (the worker leases), each shard's summary names the worker
numbers it got, and together they run exactly the serial run's tests, once each, all passing.

The project is small and inline (test_leases' conftest: PG_CONFIG and MYSQL_CONFIG with
``create_worker_init`` and ``truncate``; 12 tests that insert fixed primary keys into both
servers and check exact counts), over a base of its own (``<run prefix>_sc_<8 hex>``). The
proof is taken from the servers while all six workers are inside a test at once: each test
connects with ``application_name=dzshard<K>-<gwN>`` (PostgreSQL) and records its MariaDB
``CONNECTION_ID()``; the outer test then reads ``pg_stat_activity`` (which database each
application's session is in) and ``information_schema.PROCESSLIST`` (which database each of
those connection ids is in). Every database of the base's name (any worker number) is dropped
at the end, whatever happened.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from db_fixtures import pg_databases  # noqa: F401 - overrides conftest's: own databases only
from plugin_support import APPEND_EVENT, SampleDatabases, child_env, run_process
from test_leases import CONFTEST

from support import PG_HOST, PG_PORT, PG_USER, VENV_PYTHON, unique_name

SHARDS = 3
TESTS_N = 12
TIMEOUT_S = 240.0


#: Each test leaves ``DZ_SYNC/ready.<shard>.<worker>``, then (≤ 120 s) waits for ``DZ_SYNC/go``,
#: which the outer test makes once all six workers are ready and the servers have been read.
TESTS = (
    """
import json
import os
import time

import psycopg
import pymysql
import pytest

DB = os.environ["DZ_DB"]
SHARD = os.environ.get("DZ_SHARD", "serial")
SYNC = os.environ["DZ_SYNC"]
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def record(**fields):
    append_event({"shard": SHARD, "worker": WORKER, "pid": os.getpid(), **fields})


@pytest.mark.parametrize("n", range(12))
def test_rows(n):
    pg = psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname=DB, autocommit=True,
        application_name=f"dzshard{SHARD}-{WORKER}",
    )
    my = pymysql.connect(
        host="127.0.0.1", port=3306, user="root", password="", database=DB, autocommit=True
    )
    try:
        cur = my.cursor()
        cur.execute("SELECT CONNECTION_ID(), DATABASE()")
        my_id, my_db = cur.fetchone()
        pg_db = pg.execute("SELECT current_database()").fetchone()[0]
        record(test=f"test_rows.py::test_rows[{n}]", pg=pg_db, mysql=my_db, my_id=my_id)
        pg.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        cur.execute("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        if SHARD != "serial":
            open(os.path.join(SYNC, f"ready.{SHARD}.{WORKER}"), "w").close()
            end = time.monotonic() + 120
            while not os.path.exists(os.path.join(SYNC, "go")) and time.monotonic() < end:
                time.sleep(0.05)
        assert pg.execute("SELECT count(*) FROM items").fetchone()[0] == 3
        cur.execute("SELECT count(*) FROM items")
        assert cur.fetchone()[0] == 3
    finally:
        pg.close()
        my.close()
"""
    + APPEND_EVENT
)


def _project(root: Path) -> None:
    project = root / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_rows.py").write_text(TESTS)
    (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")


def _run(root: Path, dbs: SampleDatabases, tag: str, *args: str) -> tuple[int, str, str, float]:
    tmp = root / f"tmp-{tag}"
    tmp.mkdir()
    env = child_env(
        {
            "TMPDIR": str(tmp),
            "DZ_DB": dbs.base,
            "DZ_SHARD": tag,
            "DZ_SYNC": str(root / "sync"),
            "DZ_EVENTS": str(root / f"events-{tag}.jsonl"),
        }
    )
    argv = [str(VENV_PYTHON), "-m", "pytest", f"--basetemp={root / f'basetemp-{tag}'}"]
    argv += ["-rA", *args, str(root / "project")]
    return run_process(argv, env, root, TIMEOUT_S)


def _events(root: Path, tag: str) -> list[dict[str, Any]]:
    path = root / f"events-{tag}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _passed(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines() if line.startswith("PASSED ")]


def _server_view(base: str) -> tuple[dict[str, str], dict[int, str | None]]:
    """What the servers say now: PostgreSQL, application name -> database of the test
    sessions; MariaDB, connection id -> database of every connection in a database of `base`."""
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        rows = conn.execute(
            "SELECT application_name, datname FROM pg_stat_activity"
            " WHERE application_name LIKE 'dzshard%%' AND datname LIKE %s",
            (base.replace("_", "\\_") + "\\_jw%",),
        ).fetchall()
    pg = {str(app): str(db) for app, db in rows}
    my_conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        cur = my_conn.cursor()
        cur.execute("SELECT ID, DB FROM information_schema.PROCESSLIST")
        my = {int(i): db for i, db in cur.fetchall()}
    finally:
        my_conn.close()
    return pg, my


def _wait_ready(sync: Path, futures: list[Any]) -> None:
    """Until all six workers are inside a test; a shard that ended first fails the test."""
    end = time.monotonic() + 180
    while time.monotonic() < end and not any(f.done() for f in futures):
        if len(list(sync.glob("ready.*"))) >= SHARDS * 2:
            return
        time.sleep(0.05)
    ended = [
        f"shard {k} ended first (rc {f.result()[0]}):\n{f.result()[1][-3000:]}"
        for k, f in enumerate(futures, start=1)
        if f.done()
    ]
    ready = sorted(p.name for p in sync.iterdir())
    pytest.fail(f"the six workers were never inside a test together: {ready}\n" + "\n".join(ended))


_NUMBER = re.compile(r"_jw(\d\d)$")
_MOVED = re.compile(r"^gw\d+ → worker \d+ \(.*$", re.MULTILINE)


Results = dict[str, tuple[int, str, str, float]]


def _run_shards(root: Path, dbs: SampleDatabases) -> tuple[Results, dict[str, str], dict[int, Any]]:
    """The 3 shards started together; the servers read while all six workers are in a test."""
    sync = root / "sync"
    sync.mkdir()
    with ThreadPoolExecutor(SHARDS) as pool:
        futures = [
            pool.submit(_run, root, dbs, str(k), "--dagz-workers", "2", f"--dagz-shard={k}/3")
            for k in range(1, SHARDS + 1)
        ]
        try:
            _wait_ready(sync, futures)
            pg_seen, my_seen = _server_view(dbs.base)
        finally:
            (sync / "go").touch()
        results = {str(k): f.result() for k, f in enumerate(futures, start=1)}
    for k, (rc, out, err, _s) in results.items():
        assert rc == 0, f"shard {k} failed:\n{out[-6000:]}\n{err[-3000:]}"
    return results, pg_seen, my_seen


def _check_servers(
    events: dict[str, list[dict[str, Any]]], pg_seen: dict[str, str], my_seen: dict[int, Any]
) -> None:
    """From the servers, while all six workers were inside a test: each (shard, worker) session
    sat in a worker database, and no database held two shards' sessions."""
    by_db: dict[tuple[str, str], set[str]] = defaultdict(set)
    for k, shard_events in events.items():
        for w in ("gw0", "gw1"):
            app = f"dzshard{k}-{w}"
            assert _NUMBER.search(pg_seen.get(app, "")), (app, pg_seen)
            by_db[("pg", pg_seen[app])].add(k)
        inside = [(e["my_id"], my_seen[e["my_id"]]) for e in shard_events if e["my_id"] in my_seen]
        assert len(inside) == 2, (k, inside, my_seen)
        for _id, db in inside:
            assert _NUMBER.search(db or ""), (k, inside)
            by_db[("mysql", db)].add(k)
    shared = {db: shards for db, shards in by_db.items() if len(shards) > 1}
    assert not shared, f"worker databases that sessions of two shards were in: {shared}"
    assert len(by_db) == SHARDS * 2 * 2, by_db  # 6 databases per server, 1 per worker


def _check_summaries(base: str, results: Results, events: dict[str, list[dict[str, Any]]]) -> None:
    """Every test, as its servers reported, ran in its own shard's databases only; each shard's
    summary names the worker numbers it got, and says so when gwK took another number."""
    used = {k: {(f, e[f]) for e in events[k] for f in ("pg", "mysql")} for k in results}
    for a in results:
        for b in results:
            assert a == b or not used[a] & used[b], (a, b, used[a] & used[b])
    for k, (_rc, out, _e, _s) in results.items():
        numbers: dict[str, int] = {}
        for e in events[k]:
            for family in ("pg", "mysql"):
                m = _NUMBER.search(e[family])
                assert m, (k, e)
                assert numbers.setdefault(e["worker"], int(m[1])) == int(m[1]), (k, e)
        assert sorted(numbers) == ["gw0", "gw1"], (k, numbers)
        summary = out[out.index("= dagz =") :]
        for worker, num in numbers.items():
            for family in ("PG_CONFIG", "MYSQL_CONFIG"):
                said = f"{family}: worker {num}: {base}_jw{num:02} "
                assert said in summary, (k, said, summary)
            if num != int(worker[2:]):
                assert f"{worker} → worker {num} (" in summary, (k, worker, num, summary)


def test_three_shards_at_once_use_disjoint_worker_databases(tmp_path: Path) -> None:
    _project(tmp_path)
    dbs = SampleDatabases(unique_name("sc"))
    try:
        dbs.create()
        results, pg_seen, my_seen = _run_shards(tmp_path, dbs)
        serial_rc, serial_out, serial_err, _s = _run(tmp_path, dbs, "serial", "--dagz")
        assert serial_rc == 0, serial_out[-6000:] + serial_err[-3000:]
        serial = _passed(serial_out)
        assert len(serial) == TESTS_N, serial_out
        # the union of the shards' tests is the serial run's, each once, all passed
        executed = [t for _rc, out, _e, _s in results.values() for t in _passed(out)]
        assert sorted(executed) == sorted(serial), (sorted(executed), sorted(serial))
        events = {k: _events(tmp_path, k) for k in results}
        _check_servers(events, pg_seen, my_seen)
        _check_summaries(dbs.base, results, events)
        # the runs overlapped on one server: at least 4 of the 6 workers took another number
        moved = [line for _rc, out, _e, _s in results.values() for line in _MOVED.findall(out)]
        assert len(moved) >= 4, moved
    finally:
        dbs.drop_all()
