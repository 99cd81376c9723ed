"""Fixtures shared by the tests of dagz's database utilities (test_dbutil.py, test_warm_db.py):
unique database names dropped at the end (`make_name_fixtures(prefix)` gives each module its own
prefix) and the override of conftest's shared databases. The per-driver fixtures `pg_driver` /
`my_driver` are in conftest.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dagz.engines import mysql as _mysql
from dagz.engines import postgres as _pg

PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

NameFactory = Callable[[str], str]


@pytest.fixture(scope="session", autouse=True)
def pg_databases() -> tuple[str, ...]:
    """Overrides conftest's autouse fixture: these tests use databases of their own only, and
    must not drop/recreate the shared ones under tests of other workers that use them."""
    return ()


def _names(prefix: str, drop: Callable[..., None], kw: dict[str, Any]) -> Iterator[NameFactory]:
    names: list[str] = []

    def make(tag: str) -> str:
        names.append(f"{prefix}_{uuid.uuid4().hex[:10]}_{tag}")
        return names[-1]

    yield make
    for name in names:
        drop(name, **kw)


def make_name_fixtures(prefix: str) -> tuple[Any, Any]:
    """(pg_name, my_name): fixtures handing out unique database names starting with `prefix`,
    all dropped at the end of the test."""

    @pytest.fixture
    def pg_name() -> Iterator[NameFactory]:
        yield from _names(prefix, _pg.drop, PG)

    @pytest.fixture
    def my_name() -> Iterator[NameFactory]:
        yield from _names(prefix, _mysql.drop, MY)

    return pg_name, my_name
