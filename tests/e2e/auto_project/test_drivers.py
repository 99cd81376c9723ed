"""Six drivers, fixed primary keys, no conftest (see drivers.py)."""

from __future__ import annotations

import drivers
import pytest

CASES = range(6)


@pytest.mark.parametrize("case", CASES)
def test_psycopg2(case: int) -> None:
    drivers.psycopg2_case(case)


@pytest.mark.parametrize("case", CASES)
def test_psycopg_async(case: int) -> None:
    drivers.psycopg_async_case(case)


@pytest.mark.parametrize("case", CASES)
def test_asyncpg(case: int) -> None:
    drivers.asyncpg_case(case)


@pytest.mark.parametrize("case", CASES)
def test_adbc(case: int) -> None:
    drivers.adbc_case(case)


@pytest.mark.parametrize("case", CASES)
def test_pymysql(case: int) -> None:
    drivers.pymysql_case(case)


@pytest.mark.parametrize("case", CASES)
def test_mysqlclient(case: int) -> None:
    drivers.mysqlclient_case(case)
