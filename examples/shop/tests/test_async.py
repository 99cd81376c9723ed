"""Async access with psycopg's AsyncConnection (several connections at once)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import Engine, text

from shopapp import async_reports
from shopapp.async_reports import Dashboard
from shopapp.audit import AuditLog
from shopapp.services import Shop
from shopapp.settings import Settings
from tests.conftest import ALICE, BOB, CAROL, History


def _database(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.scalar(text("SELECT current_database()")))


def test_dashboard_of_an_empty_shop(settings: Settings, engine: Engine) -> None:
    board = asyncio.run(async_reports.dashboard(settings))
    assert board == Dashboard(0, 0, 0, 0, 0, _database(engine))


def test_dashboard_after_history(settings: Settings, history: History, engine: Engine) -> None:
    board = asyncio.run(async_reports.dashboard(settings))
    stock = history.expected_stock()
    assert board == Dashboard(
        customers=3,
        products=10,
        orders_placed=24 - history.count("cancelled"),
        revenue_cents=sum(history.expected_spent().values()),
        units_in_stock=sum(stock.values()),
        database=_database(engine),
    )


def test_order_totals(settings: Settings, history: History) -> None:
    totals = asyncio.run(async_reports.order_totals(settings, [ALICE, BOB, CAROL, 99]))
    assert totals == {**history.expected_spent(), 99: 0}


@pytest.mark.parametrize("n", [1, 20, 120])
def test_import_products(settings: Settings, shop: Shop, audit: AuditLog, n: int) -> None:
    rows = [(f"I-{i:04d}", f"Import {i}", 100 + i, i % 5) for i in range(n)]
    assert asyncio.run(async_reports.import_products(settings, rows)) == n
    assert shop.product(f"I-{n - 1:04d}").id == n
    assert shop.stock("I-0000") == 0
    assert audit.count("product.imported") == n
    assert audit.counters() == {"product.imported": n}


def test_import_with_an_existing_sku_imports_nothing(
    settings: Settings, catalog: dict[str, int], audit: AuditLog, engine: Engine
) -> None:
    rows = [("N-1", "new", 100, 1), ("A-100", "dup", 100, 1)]
    with pytest.raises(psycopg.errors.UniqueViolation):
        asyncio.run(async_reports.import_products(settings, rows))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT COUNT(*) FROM products")) == 10
    assert audit.count("product.imported") == 0


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (["A-%"], {"A-%": ["A-100", "A-101", "A-102", "A-103", "A-104"]}),
        (["B-20_", "Z%"], {"B-20_": ["B-200", "B-201", "B-202", "B-203", "B-204"], "Z%": []}),
        (
            ["%-100", "%-2%"],
            {"%-100": ["A-100"], "%-2%": ["B-200", "B-201", "B-202", "B-203", "B-204"]},
        ),
    ],
)
def test_search_products(
    settings: Settings,
    catalog: dict[str, int],
    patterns: list[str],
    expected: dict[str, list[str]],
) -> None:
    assert asyncio.run(async_reports.search_products(settings, patterns)) == expected


def test_concurrent_async_inserts(settings: Settings, shop: Shop) -> None:
    async def register(i: int) -> int:
        async with await psycopg.AsyncConnection.connect(settings.pg_conninfo) as conn:
            cur = await conn.execute(
                "INSERT INTO customers (email, name) VALUES (%s, %s) RETURNING id",
                (f"async{i}@example.com", f"Async {i}"),
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row[0])

    async def main() -> list[int]:
        return list(await asyncio.gather(*(register(i) for i in range(8))))

    ids = asyncio.run(main())
    assert sorted(ids) == list(range(1, 9))
    assert shop.find_customer("async7@example.com") is not None


def test_async_unique_violation(settings: Settings, customers: dict[str, int]) -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(settings.pg_conninfo) as conn:
            await conn.execute(
                "INSERT INTO customers (email, name) VALUES ('ALICE@example.com', 'x')"
            )

    with pytest.raises(psycopg.errors.UniqueViolation):
        asyncio.run(main())


def test_async_rollback(settings: Settings, engine: Engine) -> None:
    async def main() -> None:
        conn = await psycopg.AsyncConnection.connect(settings.pg_conninfo)
        async with conn, conn.transaction(force_rollback=True):
            for i in range(10):
                await conn.execute(
                    "INSERT INTO customers (email, name) VALUES (%s, 'r')", (f"r{i}@x.org",)
                )
            cur = await conn.execute("SELECT COUNT(*) FROM customers")
            assert await cur.fetchone() == (10,)

    asyncio.run(main())
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT COUNT(*) FROM customers")) == 0
