"""Fixtures shared by the tests of dagz's database utilities (test_dbutil.py, test_warm_db.py):
unique database names dropped at the end (`make_name_fixtures(tag)` gives each module its own
tag: ``<run prefix>_<tag>_<8 hex>_<what>``) and the override of conftest's shared databases.
The per-driver fixtures `pg_driver` / `my_driver` are in conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from dagz.engines import mysql as _mysql
from dagz.engines import postgres as _pg

from support import RUN_PREFIX

PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

NameFactory = Callable[[str], str]


def run_sql(
    engine: ModuleType, db: str | None, kw: dict[str, Any], *statements: str
) -> list[tuple[Any, ...]]:
    """Runs `statements` on a fresh connection of dagz's `engine` package (`_pg`, `_mysql`) to
    `db`; the rows of the last one."""
    conn = engine.connect(db, **kw)
    rows: list[tuple[Any, ...]] = []
    try:
        cur = conn.cursor()
        for statement in statements:
            cur.execute(statement)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
    finally:
        conn.close()
    return rows


@pytest.fixture(scope="session", autouse=True)
def pg_databases() -> tuple[str, ...]:
    """Overrides conftest's autouse fixture: these tests use databases of their own only, and
    must not drop/recreate the shared ones under tests of other workers that use them."""
    return ()


def _names(module: str, drop: Callable[..., None], kw: dict[str, Any]) -> Iterator[NameFactory]:
    names: list[str] = []

    def make(tag: str) -> str:
        names.append(f"{RUN_PREFIX}_{module}_{uuid.uuid4().hex[:8]}_{tag}")
        return names[-1]

    yield make
    errors: list[str] = []
    for name in names:  # every one, even when dropping another failed
        try:
            drop(name, **kw)
        except Exception as exc:
            errors.append(f"{name}: {exc}")
    assert not errors, "could not drop: " + "; ".join(errors)


def make_name_fixtures(module: str) -> tuple[Any, Any]:
    """(pg_name, my_name): fixtures handing out unique database names of this run, tagged with
    `module` (a few letters), all dropped at the end of the test."""

    @pytest.fixture
    def pg_name() -> Iterator[NameFactory]:
        yield from _names(module, _pg.drop, PG)

    @pytest.fixture
    def my_name() -> Iterator[NameFactory]:
        yield from _names(module, _mysql.drop, MY)

    return pg_name, my_name
