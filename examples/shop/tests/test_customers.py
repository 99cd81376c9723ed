"""Registering and finding customers; loyalty points."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from shopapp.audit import AuditLog
from shopapp.errors import DuplicateCustomerError, NotFoundError, ValidationError
from shopapp.services import Shop
from tests.conftest import ALICE, BOB, CAROL


def test_first_customer_gets_id_1(shop: Shop) -> None:
    customer = shop.register_customer("dana@example.com", "Dana Dunn")
    assert customer.id == 1
    assert shop.customer(1).email == "dana@example.com"


def test_ids_follow_registration_order(customers: dict[str, int]) -> None:
    assert customers == {"alice@example.com": 1, "bob@example.com": 2, "carol@example.com": 3}


@pytest.mark.parametrize(
    "email",
    ["alice@example.com", "ALICE@example.com", "Alice@Example.Com", "  alice@example.com  "],
)
def test_duplicate_email_rejected(shop: Shop, customers: dict[str, int], email: str) -> None:
    with pytest.raises(DuplicateCustomerError):
        shop.register_customer(email, "Another Alice")
    assert len(customers) == 3


@pytest.mark.parametrize("email", ["", "no-at-sign", "@example.com", "alice@", "a b@example.com"])
def test_invalid_email_rejected(shop: Shop, email: str) -> None:
    with pytest.raises(ValidationError):
        shop.register_customer(email, "Someone")


def test_empty_name_rejected(shop: Shop) -> None:
    with pytest.raises(ValidationError):
        shop.register_customer("eve@example.com", "   ")


def test_name_is_stripped(shop: Shop) -> None:
    customer = shop.register_customer("frank@example.com", "  Frank Fisher ")
    assert shop.customer(customer.id).name == "Frank Fisher"


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("alice@example.com", ALICE),
        ("BOB@EXAMPLE.COM", BOB),
        ("carol@Example.com", CAROL),
        ("nobody@example.com", None),
    ],
)
def test_find_by_email(
    shop: Shop, customers: dict[str, int], email: str, expected: int | None
) -> None:
    found = shop.find_customer(email)
    assert (found.id if found else None) == expected


def test_unknown_customer(shop: Shop, customers: dict[str, int]) -> None:
    with pytest.raises(NotFoundError):
        shop.customer(4)


def test_rename_keeps_email(shop: Shop, customers: dict[str, int], audit: AuditLog) -> None:
    shop.rename_customer(BOB, "Robert Baker")
    bob = shop.customer(BOB)
    assert (bob.name, bob.email) == ("Robert Baker", "bob@example.com")
    [entry] = audit.entries("customer", BOB, "customer.renamed")
    assert entry.details == {"old": "Bob Baker", "new": "Robert Baker"}


def test_rename_unknown_customer(shop: Shop) -> None:
    with pytest.raises(NotFoundError):
        shop.rename_customer(99, "Nobody")


def test_registrations_are_audited(customers: dict[str, int], audit: AuditLog) -> None:
    entries = audit.entries(entity="customer")
    assert [(e.id, e.action, e.entity_id) for e in entries] == [
        (1, "customer.registered", 1),
        (2, "customer.registered", 2),
        (3, "customer.registered", 3),
    ]
    assert entries[0].details == {"email": "alice@example.com"}


def test_new_customers_have_no_points(shop: Shop, customers: dict[str, int]) -> None:
    assert [shop.customer(cid).loyalty_points for cid in (ALICE, BOB, CAROL)] == [0, 0, 0]


@pytest.mark.parametrize(
    ("lines", "points"),
    [
        ([("A-100", 1)], 24),
        ([("A-102", 1)], 8),
        ([("B-202", 1), ("A-100", 2)], 177),
        ([("A-103", 3)], 28),
    ],
)
def test_points_for_an_order(
    shop: Shop,
    catalog: dict[str, int],
    customers: dict[str, int],
    lines: list[tuple[str, int]],
    points: int,
) -> None:
    shop.place_order(CAROL, lines)
    assert shop.customer(CAROL).loyalty_points == points
    assert shop.customer(ALICE).loyalty_points == 0


def test_points_accumulate(shop: Shop, catalog: dict[str, int], customers: dict[str, int]) -> None:
    for _ in range(5):
        shop.place_order(ALICE, [("A-101", 1)])
    assert shop.customer(ALICE).loyalty_points == 60


def test_customer_orders_relationship(
    shop: Shop, catalog: dict[str, int], customers: dict[str, int], engine: Engine
) -> None:
    shop.place_order(BOB, [("A-100", 1)])
    shop.place_order(BOB, [("A-101", 2)])
    shop.place_order(ALICE, [("A-102", 1)])
    assert [o.id for o in shop.orders_of(BOB)] == [1, 2]
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                text("SELECT customer_id, COUNT(*) FROM orders GROUP BY 1 ORDER BY 1")
            ).all()
        )
    assert counts == {ALICE: 1, BOB: 2}


def test_many_customers(shop: Shop, audit: AuditLog) -> None:
    ids = [shop.register_customer(f"user{i:03d}@example.com", f"User {i}").id for i in range(40)]
    assert ids == list(range(1, 41))
    assert audit.count("customer.registered") == 40
    assert shop.find_customer("USER039@example.com") is not None
