"""Root conftest.py of the shop example, written in the DAGZ style.

Two databases: ``shop`` on PostgreSQL (the application, through SQLAlchemy + psycopg 3) and
``shop_audit`` on MariaDB (the audit log, through mysqlclient). Under dagz every pytest-xdist
worker gets its own copy of each (``shop_jw03`` / ``shop_audit_jw03`` on worker 3):
``worker_init`` clones the migrated base database once per worker, ``prepare`` empties the
worker's database before each test that connects to it. Nothing in ``shopapp`` knows about any of
this: it connects to ``shop`` and ``shop_audit``, and so do ``psql`` and the Python subprocesses
the tests start.

The base databases are created and migrated once per run, in the controller (``pytest_configure``
below), before any xdist worker starts and clones them. Without dagz (plain ``pytest``, or dagz not
installed) the suite runs against the base databases themselves and cleans them before each test
(``clean_databases``) — which is why it cannot run on several workers without dagz.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import MySQLdb
import psycopg
import pytest

from shopapp import migrate
from shopapp.settings import load

SETTINGS = load()
PG_KW: dict[str, Any] = {
    k: v for k, v in SETTINGS.pg_kwargs().items() if k in ("host", "port", "user", "password")
}
MYSQL_KW: dict[str, Any] = {
    k: v for k, v in SETTINGS.mysql_kwargs().items() if k in ("host", "port", "user", "password")
}

try:
    from dagz.integ.mysqlclient import MYSQL_CONFIG
    from dagz.integ.mysqlclient import create_worker_init as create_mysql_worker_init
    from dagz.integ.psycopg import PG_CONFIG
    from dagz.integ.psycopg import create_worker_init as create_pg_worker_init
except ImportError:  # dagz not installed: the suite runs serially on the base databases
    PG_CONFIG = None
    MYSQL_CONFIG = None


def _prepare_pg(db_name: str) -> None:
    PG_CONFIG.truncate(db_name, **PG_KW)


def _prepare_mysql(db_name: str) -> None:
    MYSQL_CONFIG.truncate(db_name, **MYSQL_KW)


if PG_CONFIG is not None:
    PG_CONFIG.configure(
        PG_CONFIG.default_rewrite_db_name,
        PG_CONFIG.default_should_reroute,
        _prepare_pg,
        worker_init=create_pg_worker_init([SETTINGS.pg_database], **PG_KW),
    )

if MYSQL_CONFIG is not None:
    MYSQL_CONFIG.configure(
        MYSQL_CONFIG.default_rewrite_db_name,
        MYSQL_CONFIG.default_should_reroute,
        _prepare_mysql,
        worker_init=create_mysql_worker_init([SETTINGS.mysql_database], **MYSQL_KW),
    )

# Redis (the product cache, index 0) and RabbitMQ (the task queue, vhost /): worker N gets its
# own index (3 indexes per block with 16 databases and 4 workers: worker 0 uses index 3) and its
# own vhost (dz_jwNN); `prepare` empties them before each test that uses them (FLUSHDB of the
# worker's index; deleting the worker vhost's queues and exchanges).
try:
    from dagz.integ.kombu import RABBITMQ_CONFIG
    from dagz.integ.redis import REDIS_CONFIG
except ImportError:  # dagz not installed (or too old): the cache and the queue are not rerouted
    REDIS_CONFIG = None
    RABBITMQ_CONFIG = None

if REDIS_CONFIG is not None:
    REDIS_CONFIG.configure(
        rewrite_db_name=REDIS_CONFIG.default_rewrite_db_name,
        should_reroute=REDIS_CONFIG.default_should_reroute,
        prepare=REDIS_CONFIG.truncate,
    )

if RABBITMQ_CONFIG is not None:
    RABBITMQ_CONFIG.configure(
        rewrite_db_name=RABBITMQ_CONFIG.default_rewrite_db_name,
        should_reroute=RABBITMQ_CONFIG.default_should_reroute,
        prepare=RABBITMQ_CONFIG.truncate,
    )

try:
    import dagz.otel
except ImportError:  # no dagz, or no OpenTelemetry: no sub-spans, nothing else changes
    pass
else:
    dagz.otel.configure(dd=False)


# -- the base databases ---------------------------------------------------------------------------


@contextlib.contextmanager
def _not_rerouted() -> Iterator[None]:
    """The base databases themselves, even in a process where dagz reroutes."""
    with contextlib.ExitStack() as stack:
        for cfg in (PG_CONFIG, MYSQL_CONFIG):
            if cfg is not None:
                stack.enter_context(cfg.bypass())
        yield


_MIGRATED: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Create and migrate the base databases once, in the controller (xdist workers start after
    this hook returned, and clone what it built)."""
    if hasattr(config, "workerinput"):
        return
    with _not_rerouted():
        results = migrate.migrate(SETTINGS)
    _MIGRATED[:] = [str(r) for r in results]


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"shop: base {line}" for line in _MIGRATED]


# -- per-test cleanup when dagz does not reroute ------------------------------------------------

_PG_TABLES = ("outbox", "order_lines", "orders", "coupons", "inventory", "products", "customers")
_MYSQL_TABLES = ("audit_exports", "audit_counters", "audit_log")


@dataclass(frozen=True)
class Where:
    """The databases this test process really uses (after dagz, if it reroutes)."""

    pg_database: str
    mysql_database: str

    @property
    def pg_rerouted(self) -> bool:
        return self.pg_database != SETTINGS.pg_database

    @property
    def mysql_rerouted(self) -> bool:
        return self.mysql_database != SETTINGS.mysql_database


@pytest.fixture(scope="session")
def where() -> Where:
    with psycopg.connect(SETTINGS.pg_conninfo) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        pg = str(row[0]) if row else ""
    conn2 = MySQLdb.connect(**SETTINGS.mysql_kwargs())
    try:
        cur = conn2.cursor()
        cur.execute("SELECT DATABASE()")
        mysql = str(cur.fetchone()[0])
    finally:
        conn2.close()
    return Where(pg, mysql)


def _reset_pg() -> None:
    """What a serial suite does without dagz: empty every table, restart the identities."""
    statements = [f"DELETE FROM {t}" for t in _PG_TABLES]
    statements += [
        f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), 1, false)"
        for t in ("customers", "products", "orders", "order_lines", "outbox")
    ]
    with psycopg.connect(SETTINGS.pg_conninfo, autocommit=True) as conn:
        # Fail fast when another process holds the rows (several workers without dagz).
        conn.execute("SET lock_timeout = '5s'; BEGIN; " + "; ".join(statements) + "; COMMIT")


def _reset_mysql() -> None:
    conn = MySQLdb.connect(**SETTINGS.mysql_kwargs(), autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("SET SESSION lock_wait_timeout = 5, innodb_lock_wait_timeout = 5")
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in _MYSQL_TABLES:
            cur.execute(f"TRUNCATE TABLE {table}")
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")
    finally:
        conn.close()


@pytest.fixture(scope="session", autouse=True)
def leave_bases_empty(where: Where) -> Iterator[None]:
    """Without dagz, the last test's rows would stay in the base databases (which dagz clones for
    its workers): empty them once more at the end of the session."""
    yield
    if not where.pg_rerouted:
        _reset_pg()
    if not where.mysql_rerouted:
        _reset_mysql()


@pytest.fixture(autouse=True)
def clean_databases(where: Where) -> None:
    """Under dagz, `prepare` empties this worker's databases on the test's first connect.
    Without it, the base databases are emptied here (and shared by every process using them)."""
    if not where.pg_rerouted:
        _reset_pg()
    if not where.mysql_rerouted:
        _reset_mysql()
