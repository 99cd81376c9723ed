"""Customer e-mails: the outbox written with each order change, delivered by a background
notifier thread. The tests wait for delivery the way one waits for any job queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from shopapp.audit import AuditLog
from shopapp.errors import OutOfStockError
from shopapp.notifications import MemoryMailer, Notifier
from shopapp.services import Shop
from shopapp.settings import Settings
from tests.conftest import ALICE, BOB, CAROL, CUSTOMERS, Api, History

pytestmark = pytest.mark.usefixtures("catalog", "customers")


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def notifier(engine: Engine, settings: Settings, mailer: MemoryMailer) -> Iterator[Notifier]:
    n = Notifier(engine, mailer, lambda: AuditLog(settings, actor="notifier"))
    n.start()
    yield n
    n.stop()
    assert n.errors == []


def _outbox(engine: Engine) -> list[tuple[int, str, int, int, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, kind, order_id, attempts, sent_at IS NOT NULL FROM outbox ORDER BY id")
        )
        return [(int(a), str(b), int(c), int(d), bool(e)) for a, b, c, d, e in rows]


def test_confirmation_is_sent(
    shop: Shop, notifier: Notifier, mailer: MemoryMailer, audit: AuditLog, engine: Engine
) -> None:
    order = shop.place_order(ALICE, [("A-100", 2)])
    notifier.wait_until_delivered()
    [email] = mailer.sent
    assert (email.recipient, email.subject) == ("alice@example.com", "Order #1 confirmed")
    assert email.body == "Order #1 confirmed. Total: 48.00 EUR."
    assert _outbox(engine) == [(1, "order_confirmation", order.id, 1, True)]
    [entry] = audit.entries(action="notification.sent")
    assert (entry.entity_id, entry.actor, entry.details) == (
        1,
        "notifier",
        {"outbox_id": 1, "kind": "order_confirmation"},
    )


@pytest.mark.parametrize("customer_id", [ALICE, BOB, CAROL])
def test_sent_to_the_customer(
    shop: Shop, notifier: Notifier, mailer: MemoryMailer, customer_id: int
) -> None:
    shop.place_order(customer_id, [("B-204", 1)])
    notifier.wait_until_delivered()
    assert [e.recipient for e in mailer.sent] == [list(CUSTOMERS)[customer_id - 1]]


@pytest.mark.parametrize("n", [1, 4, 12, 25])
def test_every_order_once_in_order(
    shop: Shop, notifier: Notifier, mailer: MemoryMailer, audit: AuditLog, n: int
) -> None:
    for i in range(n):
        shop.place_order(1 + i % 3, [("A-101", 1)])
    notifier.wait_until_delivered()
    assert [e.subject for e in mailer.sent] == [f"Order #{i} confirmed" for i in range(1, n + 1)]
    assert audit.count("notification.sent") == n


def test_ship_and_cancel_notices(shop: Shop, notifier: Notifier, mailer: MemoryMailer) -> None:
    first = shop.place_order(BOB, [("B-200", 1)])
    second = shop.place_order(BOB, [("B-201", 1)])
    notifier.wait_until_delivered()
    shop.ship_order(first.id)
    shop.cancel_order(second.id)
    notifier.wait_until_delivered()
    assert [e.subject for e in mailer.sent] == [
        "Order #1 confirmed",
        "Order #2 confirmed",
        "Order #1 is on its way",
        "Order #2 cancelled",
    ]


def test_failed_order_sends_nothing(
    shop: Shop, notifier: Notifier, mailer: MemoryMailer, engine: Engine
) -> None:
    with pytest.raises(OutOfStockError):
        shop.place_order(ALICE, [("A-104", 1)])
    notifier.wait_until_delivered()
    assert mailer.sent == []
    assert _outbox(engine) == []


def test_changes_before_the_notifier_starts(
    shop: Shop, engine: Engine, settings: Settings, mailer: MemoryMailer
) -> None:
    order = shop.place_order(CAROL, [("A-102", 3)])
    shop.cancel_order(order.id)
    notifier = Notifier(engine, mailer, lambda: AuditLog(settings, actor="notifier")).start()
    try:
        notifier.wait_until_delivered()
    finally:
        notifier.stop()
    assert [e.subject for e in mailer.sent] == ["Order #1 confirmed", "Order #1 cancelled"]


@pytest.mark.parametrize("failures", [1, 2])
def test_retried_after_a_failure(
    shop: Shop, engine: Engine, settings: Settings, failures: int
) -> None:
    mailer = MemoryMailer(fail_first=failures)
    notifier = Notifier(engine, mailer, lambda: AuditLog(settings, actor="notifier")).start()
    try:
        shop.place_order(ALICE, [("A-100", 1)])
        notifier.wait_until_delivered()
    finally:
        notifier.stop()
    assert len(mailer.sent) == 1
    assert _outbox(engine) == [(1, "order_confirmation", 1, failures + 1, True)]


def test_dead_letter_after_max_attempts(
    shop: Shop, engine: Engine, settings: Settings, audit: AuditLog
) -> None:
    mailer = MemoryMailer(fail_first=99)
    notifier = Notifier(
        engine, mailer, lambda: AuditLog(settings, actor="notifier"), max_attempts=3
    ).start()
    try:
        shop.place_order(BOB, [("B-203", 1)])
        notifier.wait_until_delivered()
    finally:
        notifier.stop()
    assert mailer.sent == []
    assert _outbox(engine) == [(1, "order_confirmation", 1, 3, False)]
    with engine.connect() as conn:
        error = conn.scalar(text("SELECT last_error FROM outbox"))
    assert error == "451 4.3.0 temporary failure, try again later"
    assert audit.count("notification.sent") == 0


def test_two_notifiers_never_send_twice(
    shop: Shop, engine: Engine, settings: Settings, audit: AuditLog
) -> None:
    mailers = [MemoryMailer(), MemoryMailer()]
    notifiers = [
        Notifier(
            engine, m, lambda: AuditLog(settings, actor="notifier"), batch=2, name=f"n{i}"
        ).start()
        for i, m in enumerate(mailers)
    ]
    try:
        for i in range(20):
            shop.place_order(1 + i % 3, [("B-204", 1)])
        notifiers[0].wait_until_delivered()
    finally:
        for n in notifiers:
            n.stop()
    subjects = [e.subject for m in mailers for e in m.sent]
    assert sorted(subjects) == sorted(f"Order #{i} confirmed" for i in range(1, 21))
    assert audit.count("notification.sent") == 20


def test_notifications_for_a_history(
    history: History, engine: Engine, settings: Settings, mailer: MemoryMailer
) -> None:
    notifier = Notifier(
        engine, mailer, lambda: AuditLog(settings, actor="notifier"), batch=50
    ).start()
    try:
        notifier.wait_until_delivered()
    finally:
        notifier.stop()
    expected = 24 + history.count("shipped") + history.count("cancelled")
    assert len(mailer.sent) == expected
    assert all(row[4] for row in _outbox(engine))


def test_order_over_http_sends_mail(api: Api, notifier: Notifier, mailer: MemoryMailer) -> None:
    response = api.post(
        "/orders", {"customer_id": CAROL, "lines": [{"sku": "B-202", "quantity": 1}]}
    )
    assert response.status_code == 201
    notifier.wait_until_delivered()
    assert [(e.recipient, e.subject) for e in mailer.sent] == [
        ("carol@example.com", "Order #1 confirmed")
    ]


@pytest.mark.parametrize(
    ("lines", "total"),
    [([("A-100", 1)], "24.00"), ([("B-202", 2)], "258.00"), ([("A-103", 3)], "28.50")],
)
def test_body_has_the_total(
    shop: Shop,
    notifier: Notifier,
    mailer: MemoryMailer,
    lines: list[tuple[str, int]],
    total: str,
) -> None:
    shop.place_order(ALICE, lines)
    notifier.wait_until_delivered()
    assert mailer.sent[0].body.endswith(f"Total: {total} EUR.")


def test_outbox_follows_its_order(shop: Shop, engine: Engine) -> None:
    shop.place_order(ALICE, [("A-100", 1)])
    shop.place_order(BOB, [("A-100", 1)])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM orders WHERE id = 1"))
    assert [row[2] for row in _outbox(engine)] == [2]
