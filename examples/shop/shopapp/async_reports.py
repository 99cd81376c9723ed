"""Async queries with psycopg's AsyncConnection: the dashboard runs its queries concurrently,
each on its own connection; the bulk import uses COPY."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from shopapp.audit import AuditLog
from shopapp.settings import Settings


@dataclass(frozen=True)
class Dashboard:
    customers: int
    products: int
    orders_placed: int
    revenue_cents: int
    units_in_stock: int
    database: str


_QUERIES = (
    "SELECT COUNT(*) FROM customers",
    "SELECT COUNT(*) FROM products",
    "SELECT COUNT(*) FROM orders WHERE status <> 'cancelled'",
    "SELECT COALESCE(SUM(total_cents), 0) FROM orders WHERE status <> 'cancelled'",
    "SELECT COALESCE(SUM(quantity), 0) FROM inventory",
)


async def _scalar(conninfo: str, query: str, params: Sequence[object] = ()) -> object:
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
        return None if row is None else row[0]


async def dashboard(settings: Settings) -> Dashboard:
    """Five figures, each from its own connection, gathered concurrently."""
    conninfo = settings.pg_conninfo
    values = await asyncio.gather(
        *(_scalar(conninfo, q) for q in _QUERIES), _scalar(conninfo, "SELECT current_database()")
    )
    *numbers, database = values
    return Dashboard(*(int(str(v)) for v in numbers), database=str(database))


async def order_totals(settings: Settings, customer_ids: Sequence[int]) -> dict[int, int]:
    """Net spend per customer, one concurrent query per customer."""
    totals = await asyncio.gather(
        *(
            _scalar(
                settings.pg_conninfo,
                "SELECT COALESCE(SUM(total_cents), 0) FROM orders"
                " WHERE customer_id = %s AND status <> 'cancelled'",
                (cid,),
            )
            for cid in customer_ids
        )
    )
    return {cid: int(str(t)) for cid, t in zip(customer_ids, totals, strict=True)}


async def import_products(settings: Settings, rows: Sequence[tuple[str, str, int, int]]) -> int:
    """Loads (sku, name, price_cents, stock) rows with COPY in one transaction; audited."""
    async with await psycopg.AsyncConnection.connect(settings.pg_conninfo) as conn:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(
                "CREATE TEMP TABLE product_import (sku text, name text, price_cents int,"
                " stock int) ON COMMIT DROP"
            )
            async with cur.copy(
                "COPY product_import (sku, name, price_cents, stock) FROM STDIN"
            ) as copy:
                for row in rows:
                    await copy.write_row(row)
            await cur.execute(
                "WITH p AS (INSERT INTO products (sku, name, price_cents)"
                " SELECT sku, name, price_cents FROM product_import ORDER BY sku"
                " RETURNING id, sku)"
                " INSERT INTO inventory (product_id, quantity)"
                " SELECT p.id, i.stock FROM p JOIN product_import i USING (sku)"
                " RETURNING product_id"
            )
            ids = [int(r[0]) for r in await cur.fetchall()]
        sku_of = {}
        cur2 = await conn.execute("SELECT id, sku FROM products WHERE id = ANY(%s)", (ids,))
        for pid, sku in await cur2.fetchall():
            sku_of[int(pid)] = str(sku)

    def audit() -> None:
        with AuditLog(settings, actor="import") as log:
            log.record_many(
                [("product.imported", "product", pid, {"sku": sku_of[pid]}) for pid in ids]
            )

    await asyncio.to_thread(audit)
    return len(ids)


async def search_products(settings: Settings, patterns: Sequence[str]) -> dict[str, list[str]]:
    """SKUs matching each LIKE pattern, queried concurrently on one pipeline-less connection
    per pattern."""

    async def one(pattern: str) -> list[str]:
        async with await psycopg.AsyncConnection.connect(settings.pg_conninfo) as conn:
            cur = await conn.execute(
                "SELECT sku FROM products WHERE sku LIKE %s ORDER BY sku", (pattern,)
            )
            return [str(r[0]) for r in await cur.fetchall()]

    found = await asyncio.gather(*(one(p) for p in patterns))
    return dict(zip(patterns, found, strict=True))
