"""Provisioning slots (issue 16, "many workers on one server cost what their work costs"): at
most ``DAGZ_PROVISION_SLOTS`` worker databases are provisioned at once on one server, whoever
provisions them; the others wait their turn, and every copy is complete.

Six threads of this process provision six worker databases of one base (30 tables with rows,
``--dagz-fresh``: drop and copy) at the same moment, with ``DAGZ_PROVISION_SLOTS=2``. Meanwhile
the server is sampled every few milliseconds:

* MariaDB: ``information_schema.PROCESSLIST`` — a copy is under way in each session whose
  current database is one of the six targets (the copying session ``USE``s its target and stays
  in it until it closes), and a provisioning waits for a slot in a session that runs
  ``GET_LOCK('dagz:slot:…')``;
* PostgreSQL: ``pg_stat_activity`` — a copy is under way in each session connected to a target
  or running its ``CREATE DATABASE``, and ``pg_locks`` shows the sessions waiting for a slot
  (advisory locks of class `SLOT_CLASS` not granted).

At no sample are more than 2 copies under way, at some sample a provisioning waits for a slot,
and all six targets hold the base's tables and rows. The databases are ``<run prefix>_psl_…``,
dropped at the end. `test_slot_count`: what ``DAGZ_PROVISION_SLOTS`` asks for.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from dagz.engines import mysql as _mysql
from dagz.engines import postgres as _pg
from dagz.engines.slots import SLOT_CLASS, slot_count
from db_fixtures import (  # noqa: F401 - fixtures used by name
    MY,
    PG,
    NameFactory,
    make_name_fixtures,
    pg_databases,
    run_sql,
)

pg_name, my_name = make_name_fixtures("psl")

TABLES = 30
TARGETS = 6
SLOTS = 2


def _schema(engine: str) -> list[str]:
    ddl = []
    for i in range(TABLES):
        if engine == "mysql":
            ddl.append(f"CREATE TABLE t{i} (id INT PRIMARY KEY, label VARCHAR(40), KEY (label))")
            ddl.append(f"INSERT INTO t{i} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        else:
            ddl.append(f"CREATE TABLE t{i} (id int PRIMARY KEY, label text)")
            ddl.append(f"CREATE INDEX ON t{i} (label)")
            ddl.append(f"INSERT INTO t{i} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    return ddl


def _my_sample(targets: set[str]) -> tuple[int, int]:
    rows = run_sql(_mysql, None, MY, "SELECT DB, INFO FROM information_schema.PROCESSLIST")
    copying = sum(1 for db, _info in rows if db in targets)
    waiting = sum(1 for _db, info in rows if info and "GET_LOCK('dagz:slot:" in str(info))
    return copying, waiting


def _pg_sample(targets: set[str]) -> tuple[int, int]:
    names = "ARRAY[" + ", ".join(f"'{t}'" for t in sorted(targets)) + "]::text[]"
    (row,) = run_sql(
        _pg,
        "postgres",
        PG,
        "SELECT (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = ANY("
        + names
        + ") OR (a.state = 'active' AND a.query LIKE 'CREATE DATABASE%' AND EXISTS"
        " (SELECT 1 FROM unnest(" + names + ") n WHERE strpos(a.query, n) > 0))),"
        " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        f" AND classid = {SLOT_CLASS} AND objsubid = 2)",
    )
    return int(row[0]), int(row[1])


def _sampler(sample: Callable[[], tuple[int, int]], stop: threading.Event, seen: list[Any]) -> None:
    while not stop.is_set():
        seen.append(sample())
        time.sleep(0.005)


@pytest.mark.parametrize("engine", ["mysql", "pg"])
def test_at_most_the_slots_provision_at_once(
    engine: str,
    pg_name: NameFactory,
    my_name: NameFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mod, kw, name = (_mysql, MY, my_name) if engine == "mysql" else (_pg, PG, pg_name)
    base = name("base")
    targets = [name(f"jw{i:02}") for i in range(TARGETS)]
    if engine == "mysql":
        run_sql(_mysql, None, MY, f"CREATE DATABASE `{base}`")
        run_sql(_mysql, base, MY, *_schema(engine))
    else:
        run_sql(_pg, "postgres", PG, f'CREATE DATABASE "{base}"')
        run_sql(_pg, base, PG, *_schema(engine))
    monkeypatch.setenv("DAGZ_PROVISION_SLOTS", str(SLOTS))
    monkeypatch.delenv("DAGZ_RUN_DIR", raising=False)
    sample = _my_sample if engine == "mysql" else _pg_sample
    seen: list[tuple[int, int]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_sampler, args=(lambda: sample(set(targets)), stop, seen))
    watcher.start()
    try:
        with ThreadPoolExecutor(TARGETS) as pool:
            outcomes = list(pool.map(lambda t: mod.provision(base, t, fresh=True, **kw), targets))
    finally:
        stop.set()
        watcher.join()
    assert [o.action for o in outcomes] == ["rebuilt"] * TARGETS, outcomes
    most = max(copying for copying, _w in seen)
    assert most <= SLOTS, f"{most} copies under way at once (slots: {SLOTS}); samples: {seen}"
    assert most >= 1, seen  # the sampler saw the copies
    assert any(waiting for _c, waiting in seen), f"no provisioning waited for a slot: {seen}"
    for target in targets:
        if engine == "mysql":
            rows = run_sql(
                _mysql,
                None,
                MY,
                f"SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{target}'",
            )
            (last,) = run_sql(_mysql, target, MY, f"SELECT count(*) FROM t{TABLES - 1}")
        else:
            rows = run_sql(
                _pg, target, PG, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
            (last,) = run_sql(_pg, target, PG, f"SELECT count(*) FROM t{TABLES - 1}")
        assert rows == [(TABLES,)], (target, rows)
        assert last == (3,), (target, last)


def test_slot_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, 0 or not understood: no bound; a number: that many; auto: 2 per server core (this
    machine's cores when the server's are unknown), at least 2."""
    monkeypatch.delenv("DAGZ_PROVISION_SLOTS", raising=False)
    assert (slot_count(), slot_count(8)) == (0, 0)
    for text, want in (("0", 0), ("3", 3), ("many", 0), ("-2", 0)):
        monkeypatch.setenv("DAGZ_PROVISION_SLOTS", text)
        assert slot_count(8) == want, text
    monkeypatch.setenv("DAGZ_PROVISION_SLOTS", "auto")
    assert (slot_count(8), slot_count(1)) == (16, 2)
    assert slot_count() == max(2, 2 * (os.cpu_count() or 1))
