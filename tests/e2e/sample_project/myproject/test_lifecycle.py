"""The worker_init/prepare lifecycle: tests that connect in different ways, tests that never
connect, and tests whose database a fixture marked with a manual-init helper.

Every test that reads ``items`` expects it empty: a worker's database is prepared (truncated)
before each test touching it, and the manual-init tests leave rows behind on purpose, so a
prepare that a manual mark wrongly suppressed in a later test shows as a failure here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from dagz.integ.psycopg import PG_CONFIG
from dagz.integ.pymysql import MYSQL_CONFIG
from dzsample import (
    DB,
    MYSQL_URI,
    PG_KW,
    PG_URI,
    connect,
    count,
    execute,
    land,
    record,
    worker_db,
)

FIXTURE_ROWS = ((100, "fixture-a"), (101, "fixture-b"))


def _preload(driver: str, db: str) -> None:
    """What a manual-init fixture does: put its own data into the database it was given."""
    conn = connect(driver, db)
    try:
        land(driver, conn, via="manual-fixture")
        execute(conn, "DELETE FROM items")
        for key, label in FIXTURE_ROWS:
            execute(conn, "INSERT INTO items (id, label) VALUES (%s, %s)", (key, label))
    finally:
        conn.close()


def _expect_fixture_rows(driver: str) -> None:
    """Connect through the *base* name: rerouted to the marked database, and not prepared."""
    conn = connect(driver)
    try:
        assert land(driver, conn) == worker_db()
        assert count(conn, "items") == len(FIXTURE_ROWS), "prepare() ran despite the manual mark"
    finally:
        conn.close()


def _expect_empty(driver: str) -> None:
    conn = connect(driver)
    try:
        land(driver, conn)
        assert count(conn, "items") == 0, "this test's database was not prepared"
        assert count(conn, "keep_me") == 0, "this test's database was not prepared"
    finally:
        conn.close()


# -- manual init (first in the file, so later tests of the same worker follow them) ------------


@pytest.fixture
def manual_pg_name() -> str:
    name = PG_CONFIG.get_manual_init_db_name(DB)
    record("manual", family="pg", db=name, helper="name")
    _preload("psycopg", name)
    return name


@pytest.fixture
def manual_pg_url() -> str:
    url = PG_CONFIG.get_manual_init_db_url(PG_URI)
    db = url.rsplit("/", 1)[1]
    record("manual", family="pg", db=db, helper="url", url=url)
    _preload("psycopg2", db)
    return url


@pytest.fixture
def manual_mysql_url() -> str:
    url = MYSQL_CONFIG.get_manual_init_db_url(MYSQL_URI)
    db = url.rsplit("/", 1)[1]
    record("manual", family="mysql", db=db, helper="url", url=url)
    _preload("pymysql", db)
    return url


def test_manual_init_name_pg(manual_pg_name: str) -> None:
    assert manual_pg_name == worker_db()
    _expect_fixture_rows("psycopg")
    _expect_fixture_rows("psycopg2")


def test_manual_init_url_pg(manual_pg_url: str) -> None:
    assert manual_pg_url == PG_URI.rsplit("/", 1)[0] + "/" + worker_db()
    _expect_fixture_rows("psycopg")


def test_manual_init_url_mysql(manual_mysql_url: str) -> None:
    assert manual_mysql_url == MYSQL_URI.rsplit("/", 1)[0] + "/" + worker_db()
    _expect_fixture_rows("pymysql")
    _expect_fixture_rows("mysqlclient")


@pytest.mark.parametrize(
    ("scheme", "where", "query"),
    [
        ("postgres", "postgres@127.0.0.1:5432", "?sslmode=disable"),
        ("postgresql+psycopg2", "postgres:secret@127.0.0.1:5432", ""),
        ("mysql+pymysql", "root@127.0.0.1:3306", "?charset=utf8mb4"),
    ],
)
def test_manual_init_url_forms(scheme: str, where: str, query: str) -> None:
    """The other URL shapes the helper accepts; everything but the database name is kept."""
    family = "mysql" if scheme.startswith("mysql") else "pg"
    config = MYSQL_CONFIG if family == "mysql" else PG_CONFIG
    url = config.get_manual_init_db_url(f"{scheme}://{where}/{DB}{query}")
    record("manual", family=family, db=worker_db(), helper=scheme, url=url)
    assert url == f"{scheme}://{where}/{worker_db()}{query}"


@pytest.mark.parametrize("i", range(8))
def test_after_manual(i: int) -> None:
    """Touches both families' databases: each must have been prepared again for this test."""
    _expect_empty("psycopg" if i % 2 else "psycopg2")
    _expect_empty("pymysql" if i % 2 else "mysqlclient")


# -- tests that never connect ---------------------------------------------------------------


@pytest.mark.parametrize("i", range(4))
def test_no_connection(i: int) -> None:
    time.sleep(0.02)
    assert PG_CONFIG.configured


# -- one database, many connects --------------------------------------------------------------


@pytest.fixture
def connected_around() -> Iterator[None]:
    """Connects during setup and again during teardown."""
    conn = connect("psycopg2")
    land("psycopg2", conn, phase="setup")
    conn.close()
    yield
    conn = connect("psycopg")
    land("psycopg", conn, phase="teardown")
    conn.close()


def test_setup_call_teardown(connected_around: None) -> None:
    conn = connect("psycopg")
    try:
        assert land("psycopg", conn, phase="call") == worker_db()
        execute(conn, "INSERT INTO items (id, label) VALUES (1, 'call')")
    finally:
        conn.close()


async def _asyncpg_db() -> str:
    import asyncpg  # noqa: PLC0415

    conn = await asyncpg.connect(database=DB, **PG_KW)
    try:
        return str(await conn.fetchval("SELECT current_database()"))
    finally:
        await conn.close()


def test_three_drivers_one_database() -> None:
    for driver in ("psycopg", "psycopg2", "psycopg"):
        conn = connect(driver)
        try:
            assert land(driver, conn) == worker_db()
        finally:
            conn.close()
    db = asyncio.run(_asyncpg_db())
    record("landed", driver="asyncpg", family="pg", db=db)
    assert db == worker_db()


def test_both_families() -> None:
    for driver in ("psycopg", "mysqlclient", "pymysql", "psycopg2"):
        conn = connect(driver)
        try:
            assert land(driver, conn) == worker_db()
        finally:
            conn.close()
