"""The catalog and the stock."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from shopapp import reports
from shopapp.audit import AuditLog
from shopapp.errors import DuplicateSkuError, NotFoundError, ValidationError
from shopapp.services import Shop
from tests.conftest import CATALOG


def test_catalog_ids_are_1_to_10(catalog: dict[str, int]) -> None:
    assert list(catalog.values()) == list(range(1, 11))
    assert catalog["A-100"] == 1
    assert catalog["B-204"] == 10


@pytest.mark.parametrize("sku", sorted(CATALOG))
def test_catalog_product(shop: Shop, catalog: dict[str, int], sku: str) -> None:
    product = shop.product(sku)
    name, price, stock = CATALOG[sku]
    assert (product.id, product.name, product.price_cents, product.active) == (
        catalog[sku],
        name,
        price,
        True,
    )
    assert shop.stock(sku) == stock


def test_add_single_product(shop: Shop, audit: AuditLog) -> None:
    product = shop.add_product("A-100", "Espresso beans 1kg", 2400, stock=7)
    assert product.id == 1
    assert shop.stock("A-100") == 7
    [entry] = audit.entries("product", 1)
    assert (entry.id, entry.action, entry.details) == (
        1,
        "product.added",
        {"sku": "A-100", "stock": 7},
    )


@pytest.mark.parametrize("sku", ["A-100", "B-202", "B-204"])
def test_duplicate_sku_rejected(shop: Shop, catalog: dict[str, int], sku: str) -> None:
    with pytest.raises(DuplicateSkuError):
        shop.add_product(sku, "Copy", 100)
    with shop.sessions() as s:
        assert s.scalar(text("SELECT COUNT(*) FROM products")) == 10


def test_duplicate_inside_a_batch_adds_nothing(shop: Shop, audit: AuditLog) -> None:
    with pytest.raises(DuplicateSkuError):
        shop.add_products([("Z-1", "z", 100, 1), ("Z-2", "z", 100, 1), ("Z-1", "z", 100, 1)])
    with shop.sessions() as s:
        assert s.scalar(text("SELECT COUNT(*) FROM products")) == 0
    assert audit.count() == 0


@pytest.mark.parametrize("price", [0, -1, -2400])
def test_price_must_be_positive(shop: Shop, price: int) -> None:
    with pytest.raises(ValidationError):
        shop.add_product("C-1", "Cheap", price)


def test_negative_initial_stock_rejected(shop: Shop) -> None:
    with pytest.raises(ValidationError):
        shop.add_product("C-1", "Odd", 100, stock=-1)


@pytest.mark.parametrize(
    ("sku", "quantity", "expected"),
    [("A-100", 1, 51), ("A-104", 20, 20), ("B-202", 7, 10), ("A-103", 95, 100)],
)
def test_restock(
    shop: Shop, catalog: dict[str, int], audit: AuditLog, sku: str, quantity: int, expected: int
) -> None:
    assert shop.restock(sku, quantity) == expected
    assert shop.stock(sku) == expected
    [entry] = audit.entries("product", catalog[sku], "product.restocked")
    assert entry.details == {"sku": sku, "added": quantity}
    assert audit.count() == 11


@pytest.mark.parametrize("quantity", [0, -5])
def test_restock_needs_positive_quantity(
    shop: Shop, catalog: dict[str, int], quantity: int
) -> None:
    with pytest.raises(ValidationError):
        shop.restock("A-100", quantity)
    assert shop.stock("A-100") == 50


def test_restock_unknown_sku(shop: Shop, catalog: dict[str, int]) -> None:
    with pytest.raises(NotFoundError):
        shop.restock("Q-999", 5)


def test_repeated_restocks_add_up(shop: Shop, catalog: dict[str, int], audit: AuditLog) -> None:
    for _ in range(10):
        shop.restock("B-202", 2)
    assert shop.stock("B-202") == 23
    assert audit.count("product.restocked") == 10


@pytest.mark.parametrize(("sku", "price"), [("A-100", 2500), ("B-204", 1), ("B-202", 99900)])
def test_set_price(
    shop: Shop, catalog: dict[str, int], audit: AuditLog, sku: str, price: int
) -> None:
    shop.set_price(sku, price)
    assert shop.product(sku).price_cents == price
    [entry] = audit.entries("product", catalog[sku], "product.repriced")
    assert entry.details == {"sku": sku, "old": CATALOG[sku][1], "new": price}


def test_set_price_rejects_zero(shop: Shop, catalog: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        shop.set_price("A-100", 0)
    assert shop.product("A-100").price_cents == 2400


def test_deactivate(shop: Shop, catalog: dict[str, int], engine: Engine) -> None:
    shop.deactivate("A-102")
    assert shop.product("A-102").active is False
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT COUNT(*) FROM products WHERE active")) == 9


def test_unknown_product(shop: Shop, catalog: dict[str, int]) -> None:
    with pytest.raises(NotFoundError):
        shop.product("A-999")
    with pytest.raises(NotFoundError):
        shop.stock("A-999")


def test_inventory_value(catalog: dict[str, int], engine: Engine) -> None:
    expected = sum(price * stock for _name, price, stock in CATALOG.values())
    assert reports.inventory_value(engine) == expected == 381950


def test_inventory_value_ignores_inactive(
    shop: Shop, catalog: dict[str, int], engine: Engine
) -> None:
    shop.deactivate("B-202")
    assert reports.inventory_value(engine) == 381950 - 3 * 12900


def test_bulk_catalog(shop: Shop, audit: AuditLog, engine: Engine) -> None:
    rows = [(f"K-{i:04d}", f"Kit {i}", 100 + i, i % 7) for i in range(200)]
    ids = shop.add_products(rows)
    assert ids == list(range(1, 201))
    assert audit.count("product.added") == 200
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT SUM(quantity) FROM inventory")) == sum(
            i % 7 for i in range(200)
        )
    assert reports.low_stock(engine, 1)[:2] == [("K-0000", 0), ("K-0007", 0)]


def test_deleting_a_product_deletes_its_stock(catalog: dict[str, int], engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM products WHERE sku = 'A-104'"))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT COUNT(*) FROM inventory")) == 9
