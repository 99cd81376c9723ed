"""Root conftest.py of the warm-start sample project: the DAGZ setup a user writes.

``worker_init`` is dagz's ``create_worker_init([WARM_DB])`` for each family in ``WARM_FAMILIES``
(``pg``, ``mysql``), wrapped to record a snapshot of the worker database right after it
(``warmlib.snapshot``); ``prepare`` is dagz's ``truncate``. ``WARM_EVENTS`` names the events file.

``WARM_BLOCK=pg|mysql`` makes that family's worker_init stop in the middle and wait forever (the
outer test then kills the run with SIGKILL): PostgreSQL right after ``CREATE DATABASE … TEMPLATE``
(before any stamp), MySQL before the batch that creates the views and triggers of the copy (the
database exists with its tables and rows and the building stamp). Each blocked worker first
creates ``blocked-<worker>-<family>`` in ``WARM_BLOCK_DIR``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from dagz.engines.mysql import batch as _mysql
from dagz.engines.postgres import cloning as _pg
from dagz.integ.psycopg import PG_CONFIG
from dagz.integ.psycopg import create_worker_init as create_pg_worker_init
from dagz.integ.pymysql import MYSQL_CONFIG
from dagz.integ.pymysql import create_worker_init as create_mysql_worker_init
from warmlib import MY_KW, PG_KW, record, snapshot

DB = os.environ["WARM_DB"]
EVENTS = os.environ.get("WARM_EVENTS")
FAMILIES = [f for f in os.environ.get("WARM_FAMILIES", "pg,mysql").split(",") if f]
BLOCK = os.environ.get("WARM_BLOCK", "")
BLOCK_DIR = os.environ.get("WARM_BLOCK_DIR", ".")


def _block(family: str) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    Path(BLOCK_DIR, f"blocked-{worker}-{family}").touch()
    while True:  # until SIGKILL
        time.sleep(1)


if BLOCK == "pg":
    _real_create = _pg._create_retrying

    def _create_then_block(*args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        _real_create(*args, **kwargs)
        _block("pg")

    _pg._create_retrying = _create_then_block  # type: ignore[assignment]

if BLOCK == "mysql":
    _real_run = _mysql._run

    def _run_until_triggers(conn: object, statements: list[str]) -> object:
        if any(s.startswith("CREATE") and " TRIGGER " in s for s in statements):
            _block("mysql")
        return _real_run(conn, statements)

    _mysql._run = _run_until_triggers  # type: ignore[assignment]


class _Config(Protocol):
    def reroute_db(self, name: str) -> str: ...


def recorded(family: str, config: _Config, init: Callable[[int], None]) -> Callable[[int], None]:
    def worker_init(worker_num: int) -> None:
        init(worker_num)
        target = config.reroute_db(DB)
        record(EVENTS, "worker_init", family=family, db=target, snapshot=snapshot(family, target))

    return worker_init


if "pg" in FAMILIES:
    PG_CONFIG.configure(
        PG_CONFIG.default_rewrite_db_name,
        PG_CONFIG.default_should_reroute,
        lambda db_name: PG_CONFIG.truncate(db_name, **PG_KW),
        worker_init=recorded("pg", PG_CONFIG, create_pg_worker_init([DB], **PG_KW)),
    )

if "mysql" in FAMILIES:
    MYSQL_CONFIG.configure(
        MYSQL_CONFIG.default_rewrite_db_name,
        MYSQL_CONFIG.default_should_reroute,
        lambda db_name: MYSQL_CONFIG.truncate(db_name, **MY_KW),
        worker_init=recorded("mysql", MYSQL_CONFIG, create_mysql_worker_init([DB], **MY_KW)),
    )
