"""Placing, shipping and cancelling orders; stock reservations under concurrency."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from shopapp.audit import AuditLog
from shopapp.db import make_engine, session_factory
from shopapp.errors import (
    InvalidTransitionError,
    NotFoundError,
    OutOfStockError,
    ProductInactiveError,
    ValidationError,
)
from shopapp.services import Shop
from shopapp.settings import Settings
from tests.conftest import ALICE, BOB, CAROL, CATALOG

Lines = list[tuple[str, int]]


@pytest.fixture
def ready(catalog: dict[str, int], customers: dict[str, int]) -> None:
    """Catalog and customers in place."""


pytestmark = pytest.mark.usefixtures("ready")


def test_first_order_is_number_1(shop: Shop) -> None:
    order = shop.place_order(ALICE, [("A-100", 2)])
    assert (order.id, order.status, order.total_cents) == (1, "placed", 4800)
    assert [(ln.sku, ln.quantity, ln.unit_price_cents) for ln in order.lines] == [
        ("A-100", 2, 2400)
    ]


@pytest.mark.parametrize(
    ("lines", "total"),
    [
        ([("A-100", 1)], 2400),
        ([("A-101", 3)], 3600),
        ([("A-100", 1), ("A-101", 1), ("A-102", 1)], 4400),
        ([("B-202", 3)], 38700),
        ([("B-200", 1), ("B-203", 2), ("B-204", 4)], 15300),
        ([("A-103", 5)], 4750),
        ([("A-102", 10), ("B-204", 10)], 23000),
    ],
)
def test_order_total(shop: Shop, lines: Lines, total: int) -> None:
    order = shop.place_order(BOB, lines)
    assert order.total_cents == total
    assert shop.order(order.id).total_cents == total


@pytest.mark.parametrize(
    ("lines", "left"),
    [
        ([("A-100", 1)], {"A-100": 49}),
        ([("A-100", 50)], {"A-100": 0}),
        ([("A-103", 2), ("B-202", 1)], {"A-103": 3, "B-202": 2}),
        ([("B-201", 8), ("B-200", 9)], {"B-201": 0, "B-200": 1}),
    ],
)
def test_stock_is_taken(shop: Shop, lines: Lines, left: dict[str, int]) -> None:
    shop.place_order(CAROL, lines)
    for sku, qty in left.items():
        assert shop.stock(sku) == qty
    untouched = set(CATALOG) - set(left)
    assert all(shop.stock(sku) == CATALOG[sku][2] for sku in untouched)


def test_duplicate_skus_in_a_cart_are_merged(shop: Shop) -> None:
    order = shop.place_order(ALICE, [("A-101", 1), ("A-102", 1), ("A-101", 2)])
    assert [(ln.sku, ln.quantity) for ln in order.lines] == [("A-101", 3), ("A-102", 1)]
    assert shop.stock("A-101") == 37


@pytest.mark.parametrize(
    ("lines", "sku", "available"),
    [
        ([("A-104", 1)], "A-104", 0),
        ([("B-202", 4)], "B-202", 3),
        ([("A-100", 1), ("A-103", 6)], "A-103", 5),
        ([("A-103", 3), ("A-103", 3)], "A-103", 5),
    ],
)
def test_out_of_stock(shop: Shop, audit: AuditLog, lines: Lines, sku: str, available: int) -> None:
    with pytest.raises(OutOfStockError) as info:
        shop.place_order(ALICE, lines)
    assert (info.value.sku, info.value.available) == (sku, available)
    # nothing was taken, nothing was recorded
    assert shop.stock("A-100") == 50
    assert shop.orders_of(ALICE) == []
    assert audit.count("order.placed") == 0


@pytest.mark.parametrize("lines", [[], [("A-100", 0)], [("A-100", -1)], [("A-100", 1001)]])
def test_invalid_lines(shop: Shop, lines: Lines) -> None:
    with pytest.raises(ValidationError):
        shop.place_order(ALICE, lines)


def test_unknown_sku(shop: Shop) -> None:
    with pytest.raises(NotFoundError, match="Z-1"):
        shop.place_order(ALICE, [("A-100", 1), ("Z-1", 1)])
    assert shop.stock("A-100") == 50


def test_unknown_customer(shop: Shop) -> None:
    with pytest.raises(NotFoundError, match="customer 9"):
        shop.place_order(9, [("A-100", 1)])


def test_inactive_product_cannot_be_ordered(shop: Shop) -> None:
    shop.deactivate("B-203")
    with pytest.raises(ProductInactiveError):
        shop.place_order(ALICE, [("B-203", 1)])


def test_price_change_does_not_touch_placed_orders(shop: Shop) -> None:
    first = shop.place_order(ALICE, [("B-201", 1)])
    shop.set_price("B-201", 5900)
    second = shop.place_order(ALICE, [("B-201", 1)])
    assert shop.order(first.id).total_cents == 4900
    assert second.total_cents == 5900


def test_ship(shop: Shop, audit: AuditLog) -> None:
    order = shop.place_order(BOB, [("B-200", 1)])
    shipped = shop.ship_order(order.id)
    assert shipped.status == "shipped"
    assert [e.action for e in audit.entries("order", order.id)] == [
        "order.placed",
        "order.shipped",
    ]


def test_cancel_returns_stock_and_points(shop: Shop) -> None:
    order = shop.place_order(CAROL, [("B-202", 2), ("A-100", 10)])
    assert shop.stock("B-202") == 1
    assert shop.customer(CAROL).loyalty_points == 498
    cancelled = shop.cancel_order(order.id)
    assert cancelled.status == "cancelled"
    assert shop.stock("B-202") == 3
    assert shop.stock("A-100") == 50
    assert shop.customer(CAROL).loyalty_points == 0


@pytest.mark.parametrize("first", ["ship", "cancel"])
@pytest.mark.parametrize("then", ["ship", "cancel"])
def test_no_second_transition(shop: Shop, first: str, then: str) -> None:
    order = shop.place_order(ALICE, [("A-102", 1)])
    getattr(shop, f"{first}_order")(order.id)
    with pytest.raises(InvalidTransitionError):
        getattr(shop, f"{then}_order")(order.id)


@pytest.mark.parametrize("action", ["ship_order", "cancel_order", "order"])
def test_unknown_order(shop: Shop, action: str) -> None:
    with pytest.raises(NotFoundError):
        getattr(shop, action)(1)


def test_order_lines_are_unique_per_product(shop: Shop, engine: Engine) -> None:
    shop.place_order(ALICE, [("A-100", 1)])
    with pytest.raises(IntegrityError, match="order_lines_order_product_key"), engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO order_lines (order_id, product_id, quantity, unit_price_cents)"
                " VALUES (1, 1, 1, 2400)"
            )
        )


def test_deleting_an_order_deletes_its_lines(shop: Shop, engine: Engine) -> None:
    shop.place_order(ALICE, [("A-100", 1), ("A-101", 1)])
    shop.place_order(BOB, [("A-100", 1)])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM orders WHERE id = 1"))
        assert conn.scalar(text("SELECT COUNT(*) FROM order_lines")) == 1


def test_a_customer_with_orders_cannot_be_deleted(shop: Shop, engine: Engine) -> None:
    shop.place_order(ALICE, [("A-100", 1)])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("DELETE FROM customers WHERE id = 1"))


def test_order_ids_and_audit_ids_in_step(shop: Shop, audit: AuditLog) -> None:
    ids = [shop.place_order(BOB, [("B-204", 1)]).id for _ in range(8)]
    assert ids == [1, 2, 3, 4, 5, 6, 7, 8]
    entries = audit.entries(action="order.placed")
    assert [e.entity_id for e in entries] == ids
    assert [e.id for e in entries] == list(range(14, 22))


def test_history_by_customer(shop: Shop) -> None:
    for sku in ("A-100", "A-101", "A-102", "B-200"):
        shop.place_order(ALICE, [(sku, 1)])
    shop.place_order(BOB, [("B-204", 2)])
    alice = shop.orders_of(ALICE)
    assert [o.lines[0].sku for o in alice] == ["A-100", "A-101", "A-102", "B-200"]
    assert [o.id for o in shop.orders_of(BOB)] == [5]
    assert shop.orders_of(CAROL) == []


def test_selling_out_item_by_item(shop: Shop) -> None:
    for _ in range(5):
        shop.place_order(BOB, [("A-103", 1)])
    with pytest.raises(OutOfStockError):
        shop.place_order(BOB, [("A-103", 1)])
    assert shop.stock("A-103") == 0
    assert len(shop.orders_of(BOB)) == 5


def _race(settings: Settings, customer_ids: list[int], lines: Lines) -> list[str]:
    """Places the same order from several threads at once, each with its own engine."""
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(customer_ids))

    def buyer(cid: int) -> None:
        engine = make_engine(settings, pool_size=1)
        try:
            with AuditLog(settings, actor=f"buyer{cid}") as log:
                shop = Shop(session_factory(engine), log)
                barrier.wait(10)
                try:
                    shop.place_order(cid, lines)
                    outcome = "ok"
                except OutOfStockError:
                    outcome = "out"
        finally:
            engine.dispose()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=buyer, args=(cid,)) for cid in customer_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return sorted(outcomes)


def test_last_grinders_go_to_three_buyers_only(shop: Shop, settings: Settings) -> None:
    for i in range(3):
        shop.register_customer(f"buyer{i}@example.com", f"Buyer {i}")
    outcomes = _race(settings, [1, 2, 3, 4, 5, 6], [("B-202", 1)])
    assert outcomes == ["ok", "ok", "ok", "out", "out", "out"]
    assert shop.stock("B-202") == 0


def test_concurrent_orders_never_oversell(shop: Shop, settings: Settings, engine: Engine) -> None:
    outcomes = _race(settings, [ALICE, BOB, CAROL, ALICE], [("A-103", 2), ("B-201", 1)])
    assert outcomes == ["ok", "ok", "out", "out"]
    with engine.connect() as conn:
        sold = conn.scalar(text("SELECT SUM(quantity) FROM order_lines WHERE product_id = 4"))
    assert sold == 4
    assert shop.stock("A-103") == 1
