"""Background tasks through RabbitMQ (kombu): the web process enqueues, a worker runs them.

Topology, in the vhost of ``SHOP_AMQP_URL`` (``/`` by default): the direct exchange
``shop.tasks``; one durable queue per task, ``shop.tasks.<name>`` (routing key: the task's
name); ``shop.tasks.failed`` for the tasks that failed ``MAX_ATTEMPTS`` times (a dead letter,
with the last error). A message is JSON: ``{"task": name, "args": {...}, "attempts": n}``.
Publishing waits for the broker's confirm, so a task enqueued is in its queue when `enqueue`
returns.

`Worker.run_pending` takes the waiting tasks one by one (``basic.get``), runs the handler and
acks; a handler that raises sends the task back to the end of its queue with ``attempts + 1``,
or to ``shop.tasks.failed`` after its last attempt. A worker process would call it in a loop;
tests call it once and look at what it did.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import kombu

from shopapp.cache import ProductCache
from shopapp.notifications import Email, Mailer
from shopapp.services import Shop

EXCHANGE = kombu.Exchange("shop.tasks", type="direct", durable=True)
#: The tasks the shop knows, in the order a worker serves their queues.
TASKS = ("send_receipt", "warm_cache", "send_newsletter")
FAILED = "shop.tasks.failed"
MAX_ATTEMPTS = 3


def queue_name(task: str) -> str:
    return f"shop.tasks.{task}"


QUEUES = {t: kombu.Queue(queue_name(t), EXCHANGE, routing_key=t, durable=True) for t in TASKS}
FAILED_QUEUE = kombu.Queue(FAILED, EXCHANGE, routing_key="failed", durable=True)


class TaskQueue:
    """One connection to the broker: enqueue tasks, count and read what waits in the queues."""

    def __init__(self, url: str) -> None:
        self.conn = kombu.Connection(url, transport_options={"confirm_publish": True})
        self.conn.connect()
        self.channel = self.conn.default_channel
        self.producer = self.conn.Producer(serializer="json")

    def __enter__(self) -> TaskQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.release()

    @property
    def vhost(self) -> str:
        """The virtual host this connection opened (what the broker was asked for)."""
        return str(self.conn.connection.virtual_host)

    def declare(self) -> None:
        """The exchange and every queue (idempotent)."""
        for q in (*QUEUES.values(), FAILED_QUEUE):
            q(self.channel).declare()

    def enqueue(self, task: str, attempts: int = 0, **args: object) -> None:
        if task not in QUEUES:
            raise ValueError(f"unknown task {task!r}: one of {', '.join(TASKS)}")
        body = {"task": task, "args": args, "attempts": attempts}
        self.producer.publish(body, exchange=EXCHANGE, routing_key=task, declare=[QUEUES[task]])

    def pending(self) -> dict[str, int]:
        """Messages waiting per task queue (and ``failed``)."""
        out = {}
        for name, q in (*QUEUES.items(), ("failed", FAILED_QUEUE)):
            _name, count, _consumers = q(self.channel).queue_declare(passive=True)
            out[name] = int(count)
        return out

    def take_failed(self) -> list[dict[str, Any]]:
        """Removes and returns the dead letters, oldest first."""
        return list(_drain(FAILED_QUEUE(self.channel)))

    def delete_all(self) -> None:
        """Deletes the shop's queues and exchange (what a serial test suite cleans)."""
        for q in (*QUEUES.values(), FAILED_QUEUE):
            self.channel.queue_delete(q.name)
        self.channel.exchange_delete(EXCHANGE.name)


def _drain(bound: kombu.Queue) -> Iterator[dict[str, Any]]:
    while (message := bound.get(no_ack=False, accept=["json"])) is not None:
        body = dict(message.payload)
        message.ack()
        yield body


@dataclass(frozen=True)
class Done:
    task: str
    args: dict[str, Any]
    attempt: int  # 1 for the first
    error: str | None = None


@dataclass
class Worker:
    """Runs the waiting tasks with `handlers` (task name -> callable taking the task's args)."""

    queue: TaskQueue
    handlers: dict[str, Callable[..., object]]
    log: list[Done] = field(default_factory=list)

    def run_pending(self) -> list[Done]:
        """Runs tasks until every task queue is empty (retries included); returns what ran."""
        ran: list[Done] = []
        busy = True
        while busy:
            busy = False
            for task in TASKS:
                # A pass takes what was waiting when it started: a retried task (sent back to
                # the end of its queue) runs in the next pass, after the other queues' tasks.
                bound = QUEUES[task](self.queue.channel)
                _name, waiting, _consumers = bound.queue_declare(passive=True)
                for _ in range(waiting):
                    message = bound.get(no_ack=False, accept=["json"])
                    if message is None:
                        break
                    busy = True
                    ran.append(self._run(message.payload))
                    message.ack()
        self.log += ran
        return ran

    def _run(self, body: dict[str, Any]) -> Done:
        task, args = str(body["task"]), dict(body["args"])
        attempt = int(body.get("attempts", 0)) + 1
        try:
            self.handlers[task](**args)
        except Exception as exc:  # a task's failure is recorded, never the worker's end
            error = f"{type(exc).__name__}: {exc}"
            if attempt < MAX_ATTEMPTS:
                self.queue.enqueue(task, attempts=attempt, **args)
            else:
                dead = {"task": task, "args": args, "attempts": attempt, "error": error}
                self.queue.producer.publish(
                    dead, exchange=EXCHANGE, routing_key="failed", declare=[FAILED_QUEUE]
                )
            return Done(task, args, attempt, error)
        return Done(task, args, attempt)


def handlers(shop: Shop, cache: ProductCache, mailer: Mailer) -> dict[str, Callable[..., object]]:
    """The shop's task handlers."""

    def send_receipt(order_id: int) -> None:
        order = shop.order(order_id)
        customer = shop.customer(order.customer_id)
        items = sum(ln.quantity for ln in order.lines)
        body = f"Order #{order.id}: {items} item(s), total {order.total_cents / 100:.2f} EUR."
        mailer.send(Email(customer.email, f"Receipt for order #{order.id}", body))

    def warm_cache(skus: list[str]) -> None:
        cache.warm(skus)

    def send_newsletter(recipient: str, issue: int) -> None:
        mailer.send(Email(recipient, f"Shop news #{issue}", json.dumps({"issue": issue})))

    return {
        "send_receipt": send_receipt,
        "warm_cache": warm_cache,
        "send_newsletter": send_newsletter,
    }
