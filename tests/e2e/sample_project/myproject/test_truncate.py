"""``CONFIG.truncate`` through the config objects: it refuses anything but a per-worker database
of this worker (before touching it), and empties this worker's database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dagz.config import DbConfig
from dagz.integ.psycopg import PG_CONFIG
from dagz.integ.pymysql import MYSQL_CONFIG
from dzsample import DB, MYSQL_KW, PG_KW, connect, count, execute, land, scalar, worker_db

KEEP_ROWS = 5  # rows of keep_me in the base databases (seeded by the e2e suite)


def _base_rows(driver: str, config: DbConfig) -> int:
    with config.bypass():
        conn = connect(driver)
        try:
            assert land(driver, conn, bypassed=True) == DB
            return count(conn, "keep_me")
        finally:
            conn.close()


def _other_worker_db() -> str:
    return f"{DB}_jw{(int(worker_db()[-2:]) + 7) % 100:02}"


@pytest.mark.parametrize("target", ["base", "other-worker"])
@pytest.mark.parametrize(
    ("driver", "truncate", "kwargs"),
    [
        ("psycopg", PG_CONFIG.truncate, PG_KW),
        ("pymysql", MYSQL_CONFIG.truncate, MYSQL_KW),
    ],
    ids=["pg", "mysql"],
)
def test_truncate_refuses(
    driver: str, truncate: Callable[..., Any], kwargs: dict[str, Any], target: str
) -> None:
    config = PG_CONFIG if driver == "psycopg" else MYSQL_CONFIG
    assert _base_rows(driver, config) == KEEP_ROWS
    name = DB if target == "base" else _other_worker_db()
    with pytest.raises(Exception, match="dagz:") as info:
        truncate(name, **kwargs)
    assert name in str(info.value)
    assert _base_rows(driver, config) == KEEP_ROWS


def test_truncate_own_database_pg() -> None:
    conn = connect("psycopg")
    try:
        db = land("psycopg", conn)
        assert db == worker_db()
        for key in (1, 2, 3):
            execute(conn, "INSERT INTO items (id, label) VALUES (%s, 'to-empty')", (key,))
        execute(conn, "INSERT INTO notes (body) VALUES ('a'), ('b')")
        execute(conn, "INSERT INTO keep_me (id, note) VALUES (9, 'x')")
        emptied = PG_CONFIG.truncate(db, **PG_KW)
        assert {"items", "notes", "keep_me"} <= set(emptied), emptied
        assert (count(conn, "items"), count(conn, "notes"), count(conn, "keep_me")) == (0, 0, 0)
        # the serial sequence starts again
        assert scalar(conn, "INSERT INTO notes (body) VALUES ('c') RETURNING id") == 1
    finally:
        conn.close()
