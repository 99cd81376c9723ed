"""Background tasks through RabbitMQ: what the web side enqueues, the worker runs — exactly
those tasks, in order, with retries and dead letters. Fixed queue names (``shop.tasks.*``); the
tests without the ``catalog`` fixture touch RabbitMQ only."""

from __future__ import annotations

import pytest

from shopapp.cache import CacheStats, ProductCache
from shopapp.notifications import Email, MemoryMailer
from shopapp.services import Shop
from shopapp.tasks import MAX_ATTEMPTS, Done, TaskQueue, Worker
from tests.conftest import ALICE, BOB, CAROL, CATALOG, CUSTOMERS

NOTHING = {"send_receipt": 0, "warm_cache": 0, "send_newsletter": 0, "failed": 0}


def test_queues_start_empty(task_queue: TaskQueue, worker: Worker) -> None:
    assert task_queue.pending() == NOTHING
    assert worker.run_pending() == []


@pytest.mark.usefixtures("catalog", "customers")
def test_receipt(
    shop: Shop, task_queue: TaskQueue, worker: Worker, task_mailer: MemoryMailer
) -> None:
    order = shop.place_order(ALICE, [("A-100", 2), ("B-204", 1)])
    task_queue.enqueue("send_receipt", order_id=order.id)
    assert task_queue.pending() == {**NOTHING, "send_receipt": 1}
    assert worker.run_pending() == [Done("send_receipt", {"order_id": 1}, 1)]
    assert task_mailer.sent == [
        Email("alice@example.com", "Receipt for order #1", "Order #1: 3 item(s), total 63.00 EUR.")
    ]
    assert task_queue.pending() == NOTHING


@pytest.mark.usefixtures("catalog", "customers")
@pytest.mark.parametrize("customer", [ALICE, BOB, CAROL])
def test_receipts_go_to_their_customer(
    shop: Shop, task_queue: TaskQueue, worker: Worker, task_mailer: MemoryMailer, customer: int
) -> None:
    orders = [shop.place_order(customer, [("A-101", n)]) for n in (1, 2, 3)]
    for order in orders:
        task_queue.enqueue("send_receipt", order_id=order.id)
    done = worker.run_pending()
    assert [d.args["order_id"] for d in done] == [1, 2, 3]
    email = list(CUSTOMERS)[customer - 1]
    assert [(m.recipient, m.subject) for m in task_mailer.sent] == [
        (email, f"Receipt for order #{n}") for n in (1, 2, 3)
    ]


def test_tasks_run_in_the_order_they_were_enqueued(
    task_queue: TaskQueue, worker: Worker, task_mailer: MemoryMailer
) -> None:
    for issue in range(1, 6):
        task_queue.enqueue("send_newsletter", recipient="bob@example.com", issue=issue)
    assert task_queue.pending()["send_newsletter"] == 5
    worker.run_pending()
    assert [m.subject for m in task_mailer.sent] == [f"Shop news #{i}" for i in range(1, 6)]


@pytest.mark.usefixtures("catalog", "customers")
def test_warm_cache_task(task_queue: TaskQueue, worker: Worker, cache: ProductCache) -> None:
    task_queue.enqueue("warm_cache", skus=sorted(CATALOG)[:4])
    task_queue.enqueue("warm_cache", skus=sorted(CATALOG)[2:6])
    assert [d.error for d in worker.run_pending()] == [None, None]
    assert cache.stats() == CacheStats(hits=0, misses=6, cached=6)


def test_failed_task_is_retried(
    task_queue: TaskQueue, worker: Worker, task_mailer: MemoryMailer
) -> None:
    task_mailer.failures_left = MAX_ATTEMPTS - 1
    task_queue.enqueue("send_newsletter", recipient="carol@example.com", issue=7)
    done = worker.run_pending()
    assert [(d.attempt, d.error is None) for d in done] == [(1, False), (2, False), (3, True)]
    assert [m.recipient for m in task_mailer.sent] == ["carol@example.com"]
    assert task_queue.pending() == NOTHING


def test_task_that_keeps_failing_is_dead_lettered(
    task_queue: TaskQueue, worker: Worker, task_mailer: MemoryMailer
) -> None:
    task_queue.enqueue("send_receipt", order_id=99)  # no such order
    task_queue.enqueue("send_newsletter", recipient="alice@example.com", issue=1)
    done = worker.run_pending()
    assert [(d.task, d.attempt) for d in done] == [
        ("send_receipt", 1),
        ("send_newsletter", 1),
        ("send_receipt", 2),
        ("send_receipt", 3),
    ]
    assert task_queue.pending() == {**NOTHING, "failed": 1}
    assert task_queue.take_failed() == [
        {
            "task": "send_receipt",
            "args": {"order_id": 99},
            "attempts": MAX_ATTEMPTS,
            "error": "NotFoundError: order 99 not found",
        }
    ]
    assert [m.subject for m in task_mailer.sent] == ["Shop news #1"]
