"""Coupons: discounts, limited uses, release on cancellation."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shopapp.audit import AuditLog
from shopapp.errors import CouponExhaustedError, NotFoundError, ValidationError
from shopapp.models import Coupon
from shopapp.services import Shop
from tests.conftest import ALICE, BOB, CAROL

pytestmark = pytest.mark.usefixtures("catalog", "customers")


def _uses(shop: Shop, code: str) -> int:
    with shop.sessions() as s:
        coupon = s.get(Coupon, code)
        assert coupon is not None
        return coupon.uses


@pytest.mark.parametrize(
    ("percent", "lines", "discount", "total"),
    [
        (10, [("A-100", 1)], 240, 2160),
        (25, [("B-202", 1)], 3225, 9675),
        (50, [("A-101", 3), ("A-102", 1)], 2200, 2200),
        (100, [("B-204", 2)], 3000, 0),
        (15, [("A-103", 1)], 142, 808),
    ],
)
def test_discount(
    shop: Shop, percent: int, lines: list[tuple[str, int]], discount: int, total: int
) -> None:
    shop.create_coupon("WELCOME", percent, max_uses=1)
    order = shop.place_order(ALICE, lines, coupon="WELCOME")
    assert (order.discount_cents, order.total_cents, order.coupon_code) == (
        discount,
        total,
        "WELCOME",
    )
    assert shop.customer(ALICE).loyalty_points == total // 100


def test_coupon_used_up(shop: Shop, audit: AuditLog) -> None:
    shop.create_coupon("TWICE", 5, max_uses=2)
    shop.place_order(ALICE, [("A-100", 1)], coupon="TWICE")
    shop.place_order(BOB, [("A-100", 1)], coupon="TWICE")
    with pytest.raises(CouponExhaustedError):
        shop.place_order(CAROL, [("A-100", 1)], coupon="TWICE")
    assert _uses(shop, "TWICE") == 2
    assert shop.stock("A-100") == 48
    assert audit.count("order.placed") == 2


def test_cancel_releases_the_use(shop: Shop) -> None:
    shop.create_coupon("ONCE", 20, max_uses=1)
    order = shop.place_order(BOB, [("B-200", 1)], coupon="ONCE")
    assert _uses(shop, "ONCE") == 1
    shop.cancel_order(order.id)
    assert _uses(shop, "ONCE") == 0
    again = shop.place_order(CAROL, [("B-200", 1)], coupon="ONCE")
    assert again.total_cents == 2800


def test_unknown_coupon(shop: Shop) -> None:
    with pytest.raises(NotFoundError, match="NOPE"):
        shop.place_order(ALICE, [("A-100", 1)], coupon="NOPE")
    assert shop.stock("A-100") == 50


@pytest.mark.parametrize(("percent", "uses"), [(0, 1), (101, 1), (10, 0), (10, -3)])
def test_invalid_coupon(shop: Shop, percent: int, uses: int) -> None:
    with pytest.raises(ValidationError):
        shop.create_coupon("BAD", percent, max_uses=uses)


def test_coupon_codes_are_unique(shop: Shop, audit: AuditLog) -> None:
    shop.create_coupon("SPRING", 10)
    with pytest.raises(ValidationError):
        shop.create_coupon("SPRING", 20)
    assert audit.count("coupon.created") == 1


def test_revenue_net_of_discounts(shop: Shop) -> None:
    shop.create_coupon("HALF", 50, max_uses=10)
    for cid in (ALICE, BOB, CAROL):
        shop.place_order(cid, [("B-203", 1)], coupon="HALF")
    with shop.sessions() as s:
        assert s.scalar(text("SELECT SUM(total_cents) FROM orders")) == 3 * 1450
        assert s.scalar(text("SELECT SUM(discount_cents) FROM orders")) == 3 * 1450
        assert s.scalar(text("SELECT uses FROM coupons WHERE code = 'HALF'")) == 3
