"""The live HTTP API, served from a thread of the test process."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests
from sqlalchemy import Engine, text

from shopapp.audit import AuditLog
from shopapp.services import Shop
from tests.conftest import ALICE, BOB, CAROL, CATALOG, Api, History


def test_health_names_the_databases_of_this_process(
    api: Api, engine: Engine, audit: AuditLog
) -> None:
    body = api.get("/health").json()
    with engine.connect() as conn:
        database = conn.scalar(text("SELECT current_database()"))
    assert body == {"status": "ok", "database": database, "audit_database": audit.database()}


def test_products_empty(api: Api) -> None:
    response = api.get("/products")
    assert response.status_code == 200
    assert response.json() == []


def test_list_products(api: Api, catalog: dict[str, int]) -> None:
    products = api.get("/products").json()
    assert [p["sku"] for p in products] == sorted(CATALOG)
    assert products[0] == {
        "sku": "A-100",
        "name": "Espresso beans 1kg",
        "price_cents": 2400,
        "active": True,
        "stock": 50,
    }


@pytest.mark.parametrize("sku", ["A-100", "A-104", "B-202"])
def test_get_product(api: Api, catalog: dict[str, int], sku: str) -> None:
    body = api.get(f"/products/{sku}").json()
    assert (body["sku"], body["price_cents"], body["stock"]) == (
        sku,
        CATALOG[sku][1],
        CATALOG[sku][2],
    )


def test_get_unknown_product(api: Api) -> None:
    response = api.get("/products/NOPE-1")
    assert response.status_code == 404
    assert response.json()["error"] == "NotFoundError"


def test_create_product(api: Api, shop: Shop, audit: AuditLog) -> None:
    response = api.post(
        "/products", {"sku": "A-100", "name": "Beans", "price_cents": 999, "stock": 4}
    )
    assert response.status_code == 201
    assert response.json() == {"id": 1, "sku": "A-100"}
    assert shop.stock("A-100") == 4
    [entry] = audit.entries("product", 1)
    assert entry.actor == "api"


def test_create_duplicate_product(api: Api, catalog: dict[str, int]) -> None:
    response = api.post("/products", {"sku": "B-200", "name": "Moka", "price_cents": 100})
    assert response.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "price_cents": 100},
        {"sku": "X-1", "name": "x", "price_cents": "100"},
        {"sku": "X-1", "name": "x", "price_cents": 0},
        {"sku": "X-1", "name": "x", "price_cents": True},
    ],
)
def test_create_product_validation(api: Api, body: dict[str, object]) -> None:
    assert api.post("/products", body).status_code == 400
    assert api.get("/products").json() == []


def test_restock_over_http(api: Api, catalog: dict[str, int], shop: Shop) -> None:
    response = api.post("/products/A-104/restock", {"quantity": 12})
    assert response.json() == {"sku": "A-104", "stock": 12}
    assert shop.stock("A-104") == 12


def test_register_customer(api: Api) -> None:
    first = api.post("/customers", {"email": "alice@example.com", "name": "Alice"})
    second = api.post("/customers", {"email": "bob@example.com", "name": "Bob"})
    assert (first.status_code, first.json()) == (201, {"id": 1, "email": "alice@example.com"})
    assert second.json()["id"] == 2


def test_register_duplicate_customer(api: Api, customers: dict[str, int]) -> None:
    response = api.post("/customers", {"email": "Alice@Example.com", "name": "Alice 2"})
    assert response.status_code == 409
    assert response.json()["error"] == "DuplicateCustomerError"


def test_get_customer(api: Api, customers: dict[str, int]) -> None:
    assert api.get("/customers/2").json() == {
        "id": 2,
        "email": "bob@example.com",
        "name": "Bob Baker",
        "loyalty_points": 0,
    }
    assert api.get("/customers/4").status_code == 404


@pytest.mark.usefixtures("catalog", "customers")
def test_place_order(api: Api, shop: Shop) -> None:
    response = api.post(
        "/orders",
        {
            "customer_id": ALICE,
            "lines": [{"sku": "A-100", "quantity": 2}, {"sku": "B-204", "quantity": 1}],
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["id"], body["total_cents"], body["status"]) == (1, 6300, "placed")
    assert shop.stock("A-100") == 48
    assert api.get("/customers/1").json()["loyalty_points"] == 63


@pytest.mark.usefixtures("catalog", "customers")
@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"customer_id": ALICE, "lines": [{"sku": "A-104", "quantity": 1}]}, 409),
        ({"customer_id": ALICE, "lines": [{"sku": "B-202", "quantity": 9}]}, 409),
        ({"customer_id": 77, "lines": [{"sku": "A-100", "quantity": 1}]}, 404),
        ({"customer_id": ALICE, "lines": [{"sku": "Q-1", "quantity": 1}]}, 404),
        ({"customer_id": ALICE, "lines": []}, 400),
        ({"customer_id": ALICE, "lines": [{"sku": "A-100"}]}, 400),
        ({"customer_id": ALICE, "lines": "A-100"}, 400),
        ({"customer_id": "1", "lines": [{"sku": "A-100", "quantity": 1}]}, 400),
        ({"customer_id": ALICE, "lines": [{"sku": "A-100", "quantity": 1}], "coupon": "X"}, 404),
    ],
)
def test_place_order_errors(
    api: Api, audit: AuditLog, body: dict[str, object], status: int
) -> None:
    assert api.post("/orders", body).status_code == status
    assert audit.count("order.placed") == 0


@pytest.mark.usefixtures("catalog", "customers")
def test_order_lifecycle_over_http(api: Api, audit: AuditLog) -> None:
    order = api.post("/orders", {"customer_id": BOB, "lines": [{"sku": "B-200", "quantity": 1}]})
    oid = order.json()["id"]
    assert api.post(f"/orders/{oid}/ship").json()["status"] == "shipped"
    assert api.post(f"/orders/{oid}/cancel").status_code == 409
    trail = api.get("/audit", entity="order", entity_id=oid).json()
    assert [e["action"] for e in trail] == ["order.placed", "order.shipped"]
    assert audit.count() == 15


@pytest.mark.usefixtures("catalog", "customers")
def test_cancel_over_http(api: Api, shop: Shop) -> None:
    oid = api.post(
        "/orders", {"customer_id": CAROL, "lines": [{"sku": "B-202", "quantity": 3}]}
    ).json()["id"]
    assert shop.stock("B-202") == 0
    assert api.post(f"/orders/{oid}/cancel").json()["status"] == "cancelled"
    assert shop.stock("B-202") == 3
    assert api.get(f"/orders/{oid}").json()["status"] == "cancelled"


def test_customer_orders_over_http(api: Api, history: History) -> None:
    for cid in (ALICE, BOB, CAROL):
        orders = api.get(f"/customers/{cid}/orders").json()
        expected = [
            o.id for p, o in zip(history.plan, history.orders, strict=True) if p.customer_id == cid
        ]
        assert [o["id"] for o in orders] == expected
    assert api.get("/customers/9/orders").status_code == 404


def test_sales_report_over_http(api: Api, history: History) -> None:
    sales = {r["sku"]: r["units"] for r in api.get("/reports/sales").json()}
    assert sales == history.expected_units()


@pytest.mark.parametrize("limit", [1, 3])
def test_top_customers_over_http(api: Api, history: History, limit: int) -> None:
    top = api.get("/reports/top-customers", limit=limit).json()
    assert len(top) == limit
    spent = history.expected_spent()
    assert top[0]["spent_cents"] == max(spent.values())


@pytest.mark.parametrize("threshold", [1, 5, 30])
def test_low_stock_over_http(api: Api, catalog: dict[str, int], threshold: int) -> None:
    low = api.get("/reports/low-stock", threshold=threshold).json()
    expected = sorted(
        ((sku, s) for sku, (_n, _p, s) in CATALOG.items() if s < threshold),
        key=lambda x: (x[1], x[0]),
    )
    assert [(r["sku"], r["stock"]) for r in low] == expected


def test_bad_query_parameter(api: Api) -> None:
    assert api.get("/reports/low-stock", threshold="many").status_code == 400


def test_unknown_route_and_method(api: Api) -> None:
    assert api.get("/nothing-here").status_code == 404
    assert api.post("/health").status_code == 405


def test_invalid_json(api: Api) -> None:
    response = requests.post(api.base + "/customers", data=b"{not json", timeout=30)
    assert response.status_code == 400


@pytest.mark.usefixtures("catalog", "customers")
def test_parallel_requests_never_oversell(api: Api, shop: Shop) -> None:
    """Eight clients want the three last grinders at once; the server threads race."""
    body = {"customer_id": ALICE, "lines": [{"sku": "B-202", "quantity": 1}]}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = sorted(
            r.status_code for r in pool.map(lambda _: api.post("/orders", body), range(8))
        )
    assert statuses == [201, 201, 201, 409, 409, 409, 409, 409]
    assert shop.stock("B-202") == 0


@pytest.mark.usefixtures("catalog", "customers")
def test_many_orders_over_http(api: Api, audit: AuditLog) -> None:
    for i in range(20):
        sku = ("A-100", "A-101", "A-102", "B-204")[i % 4]
        response = api.post(
            "/orders", {"customer_id": 1 + i % 3, "lines": [{"sku": sku, "quantity": 1}]}
        )
        assert response.json()["id"] == i + 1
    assert audit.count("order.placed") == 20
