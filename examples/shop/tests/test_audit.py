"""The audit log on MariaDB: every write of the shop is there, in order, with exact ids."""

from __future__ import annotations

import MySQLdb
import pytest

from shopapp.audit import AuditLog
from shopapp.services import Shop
from tests.conftest import ALICE, BOB, History


def test_first_entry_has_id_1(audit: AuditLog) -> None:
    assert audit.record("note", "system", 0, text="hello") == 1
    [entry] = audit.entries()
    assert (entry.id, entry.actor, entry.action, entry.details) == (
        1,
        "test",
        "note",
        {"text": "hello"},
    )


@pytest.mark.parametrize("n", [1, 5, 25, 100])
def test_ids_are_consecutive(audit: AuditLog, n: int) -> None:
    ids = [audit.record("tick", "clock", i) for i in range(n)]
    assert ids == list(range(1, n + 1))
    assert audit.count() == n


def test_record_many(audit: AuditLog) -> None:
    rows: list[tuple[str, str, int, dict[str, object]]] = [
        ("bulk", "item", i, {"i": i}) for i in range(50)
    ]
    assert audit.record_many(rows) == 50
    assert audit.count("bulk") == 50
    assert audit.counters() == {"bulk": 50}


def test_catalog_and_customers_are_audited(
    catalog: dict[str, int], customers: dict[str, int], audit: AuditLog
) -> None:
    assert audit.counters() == {"product.added": 10, "customer.registered": 3}
    assert audit.summary() == {"product": (10, 10, 10), "customer": (3, 3, 13)}


def test_every_write_of_the_history_is_audited(history: History, audit: AuditLog) -> None:
    expected = {
        "product.added": 10,
        "customer.registered": 3,
        "order.placed": 24,
        "order.shipped": history.count("shipped"),
        "order.cancelled": history.count("cancelled"),
    }
    assert audit.counters() == expected
    assert audit.count() == sum(expected.values()) == 47


def test_order_trail(history: History, audit: AuditLog) -> None:
    for p, o in zip(history.plan, history.orders, strict=True):
        trail = [e.action for e in audit.entries("order", o.id)]
        if p.fate == "placed":
            assert trail == ["order.placed"]
        else:
            assert trail == ["order.placed", f"order.{p.fate}"]


def test_order_details(
    shop: Shop, catalog: dict[str, int], customers: dict[str, int], audit: AuditLog
) -> None:
    order = shop.place_order(BOB, [("B-204", 2), ("A-101", 1)])
    [entry] = audit.entries("order", order.id)
    assert entry.details == {
        "customer_id": BOB,
        "total_cents": 4200,
        "lines": {"A-101": 1, "B-204": 2},
    }
    assert entry.id == 14


def test_failed_writes_are_not_audited(
    shop: Shop, catalog: dict[str, int], customers: dict[str, int], audit: AuditLog
) -> None:
    before = audit.count()
    for _ in range(3):
        with pytest.raises(Exception, match="A-104"):
            shop.place_order(ALICE, [("A-104", 1)])
    assert audit.count() == before == 13


def test_export_since_last(audit: AuditLog) -> None:
    for i in range(7):
        audit.record("e", "x", i)
    first = audit.export_since_last()
    assert [e.id for e in first] == [1, 2, 3, 4, 5, 6, 7]
    assert audit.export_since_last() == []
    audit.record("e", "x", 7)
    audit.record("e", "x", 8)
    second = audit.export_since_last()
    assert [e.id for e in second] == [8, 9]
    assert audit.exports() == [(1, 7, 7), (2, 9, 2)]


def test_export_references_an_entry(audit: AuditLog) -> None:
    audit.record("e", "x", 1)
    audit.export_since_last()
    with pytest.raises(MySQLdb.IntegrityError):
        audit._query("DELETE FROM audit_log WHERE id = 1")
    assert audit.count() == 1


@pytest.mark.parametrize("entity", ["order", "customer", "product"])
def test_entries_filter(history: History, audit: AuditLog, entity: str) -> None:
    entries = audit.entries(entity=entity)
    assert entries
    assert {e.entity for e in entries} == {entity}
    assert [e.id for e in entries] == sorted(e.id for e in entries)


def test_summary_view_after_history(history: History, audit: AuditLog) -> None:
    summary = audit.summary()
    assert summary["order"][:2] == (24 + history.count("shipped") + history.count("cancelled"), 24)
    assert summary["order"][2] == 47
