"""Reports over an order history of 24 orders."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from shopapp import reports
from shopapp.services import Shop
from tests.conftest import ALICE, BOB, CAROL, CATALOG, History, history_plan


def test_plan_is_deterministic() -> None:
    assert history_plan() == history_plan()
    plan = history_plan()
    assert len(plan) == 24
    assert sum(1 for p in plan if p.fate == "cancelled") == 5
    assert sum(1 for p in plan if p.fate == "shipped") == 5


def test_history_order_ids(history: History) -> None:
    assert [o.id for o in history.orders] == list(range(1, 25))


@pytest.mark.parametrize("fate", ["placed", "shipped", "cancelled"])
def test_revenue_by_status(history: History, engine: Engine, fate: str) -> None:
    by_status = reports.revenue_by_status(engine)
    expected = sum(
        o.total_cents for p, o in zip(history.plan, history.orders, strict=True) if p.fate == fate
    )
    assert by_status.get(fate, 0) == expected
    assert sum(by_status.values()) == sum(o.total_cents for o in history.orders)


def test_sales_by_product_matches_the_plan(history: History, engine: Engine) -> None:
    sales = {r.sku: r for r in reports.sales_by_product(engine)}
    assert set(sales) == set(CATALOG)
    for sku, units in history.expected_units().items():
        assert sales[sku].units == units, sku
        assert sales[sku].revenue_cents == units * CATALOG[sku][1], sku


def test_sales_sorted_by_revenue(history: History, engine: Engine) -> None:
    sales = reports.sales_by_product(engine)
    revenues = [r.revenue_cents for r in sales]
    assert revenues == sorted(revenues, reverse=True)
    assert sales[-1].sku == "A-104"
    assert sales[-1].units == 0


@pytest.mark.parametrize("sku", sorted(CATALOG))
def test_stock_after_history(history: History, shop: Shop, sku: str) -> None:
    assert shop.stock(sku) == history.expected_stock()[sku]


def test_top_customers(history: History, engine: Engine) -> None:
    spent = history.expected_spent()
    ranked = reports.top_customers(engine, limit=3)
    assert [r.spent_cents for r in ranked] == sorted(spent.values(), reverse=True)
    assert {r.customer_id: r.spent_cents for r in ranked} == spent
    orders = {
        cid: sum(1 for p in history.plan if p.customer_id == cid and p.fate != "cancelled")
        for cid in (ALICE, BOB, CAROL)
    }
    assert {r.customer_id: r.orders for r in ranked} == orders


@pytest.mark.parametrize("limit", [1, 2, 3, 10])
def test_top_customers_limit(history: History, engine: Engine, limit: int) -> None:
    assert len(reports.top_customers(engine, limit=limit)) == min(limit, 3)


@pytest.mark.parametrize("threshold", [1, 3, 6, 20, 100])
def test_low_stock(history: History, engine: Engine, threshold: int) -> None:
    stock = history.expected_stock()
    expected = sorted(
        ((sku, q) for sku, q in stock.items() if q < threshold), key=lambda x: (x[1], x[0])
    )
    assert reports.low_stock(engine, threshold) == expected


def test_loyalty_points_after_history(history: History, shop: Shop) -> None:
    points = {ALICE: 0, BOB: 0, CAROL: 0}
    for p, o in zip(history.plan, history.orders, strict=True):
        if p.fate != "cancelled":
            points[p.customer_id] += o.total_cents // 100
    for cid, pts in points.items():
        assert shop.customer(cid).loyalty_points == pts


def test_table_counts(history: History, engine: Engine) -> None:
    counts = reports.table_counts(engine)
    lines = sum(len(p.lines) for p in history.plan)
    assert counts == {
        "customers": 3,
        "products": 10,
        "inventory": 10,
        "orders": 24,
        "order_lines": lines,
        "coupons": 0,
    }


def test_inventory_value_after_history(history: History, engine: Engine) -> None:
    stock = history.expected_stock()
    assert reports.inventory_value(engine) == sum(q * CATALOG[s][1] for s, q in stock.items())


def test_history_again_on_top(history: History, shop: Shop, engine: Engine) -> None:
    """Placing the same orders again (none cancelled this time) needs more stock first."""
    for sku in CATALOG:
        shop.restock(sku, 100)
    for p in history.plan:
        shop.place_order(p.customer_id, p.lines)
    counts = reports.table_counts(engine)
    assert counts["orders"] == 48
