"""Root conftest.py of the sample project, set up the way the DAGZ documentation shows it.

The base databases (``DZ_DB`` on PostgreSQL and MariaDB) hold the schema; ``worker_init`` clones
them into each worker's database, and ``prepare`` empties a worker's database before each test
that uses it. Both callbacks also log an event (``dzsample.record``) so the e2e suite can count
them. ``DZ_SINGLE_WORKER_DISABLE`` / ``DZ_MAIN_WORKER_BYPASS`` / ``DZ_REWRITE`` pick the variant
of ``configure()`` under test.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from dzsample import DB, FAMILIES, MYSQL_KW, PG_KW, mapped_shim, record

try:
    import dagz.integ.asyncpg
    import dagz.integ.psycopg2
    from dagz.integ.psycopg import PG_CONFIG
    from dagz.integ.psycopg import create_worker_init as create_pg_worker_init
except ImportError:  # dagz not installed: the suite runs serially against the base databases
    PG_CONFIG = None  # type: ignore[assignment]

try:
    import dagz.integ.mysqlclient  # noqa: F401 - same MYSQL_CONFIG
    from dagz.integ.pymysql import MYSQL_CONFIG
    from dagz.integ.pymysql import create_worker_init as create_mysql_worker_init
except ImportError:
    MYSQL_CONFIG = None  # type: ignore[assignment]

SINGLE_WORKER_DISABLE = os.environ.get("DZ_SINGLE_WORKER_DISABLE") == "1"
MAIN_WORKER_BYPASS = os.environ.get("DZ_MAIN_WORKER_BYPASS") == "1"
#: ``default``, or a broken rewrite_db_name: ``nonstr`` (returns an int) or ``long`` (70 chars).
REWRITE = os.environ.get("DZ_REWRITE", "default")


def counted(family: str, worker_init: Callable[[int], None]) -> Callable[[int], None]:
    """``worker_init`` that logs its call first."""

    def init(worker_num: int) -> None:
        record("worker_init", family=family, arg=worker_num, shim=mapped_shim())
        worker_init(worker_num)

    return init


def broken_rewrite(db_name: str, session: object) -> object:
    if REWRITE == "nonstr":
        return 42
    return (f"{db_name}_{'x' * 70}")[:70]


def pg_prepare(db_name: str) -> None:
    record("prepare", family="pg", db=db_name)
    PG_CONFIG.truncate(db_name, **PG_KW)


def mysql_prepare(db_name: str) -> None:
    record("prepare", family="mysql", db=db_name)
    MYSQL_CONFIG.truncate(db_name, **MYSQL_KW)


if PG_CONFIG is not None and "pg" in FAMILIES:
    PG_CONFIG.configure(
        PG_CONFIG.default_rewrite_db_name if REWRITE == "default" else broken_rewrite,
        PG_CONFIG.default_should_reroute,
        pg_prepare,
        worker_init=counted("pg", create_pg_worker_init([DB], **PG_KW)),
        single_worker_disable=SINGLE_WORKER_DISABLE,
        main_worker_bypass=MAIN_WORKER_BYPASS,
    )

if MYSQL_CONFIG is not None and "mysql" in FAMILIES:
    MYSQL_CONFIG.configure(
        MYSQL_CONFIG.default_rewrite_db_name if REWRITE == "default" else broken_rewrite,
        MYSQL_CONFIG.default_should_reroute,
        mysql_prepare,
        worker_init=counted("mysql", create_mysql_worker_init([DB], **MYSQL_KW)),
        single_worker_disable=SINGLE_WORKER_DISABLE,
        main_worker_bypass=MAIN_WORKER_BYPASS,
    )
