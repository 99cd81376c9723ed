"""DAGZ API for RabbitMQ through aio-pika / aiormq: `RABBITMQ_CONFIG` (the same object as in
`dagz.integ.pika` and `.kombu`).

The hook sits on `aiormq.Connection.__init__` (aio-pika's `connect`, `connect_robust` and their
reconnects all make one): the vhost parsed from the URL is rerouted there, in the connecting
task's context.
"""

from __future__ import annotations

from typing import Any

from dagz.families import RABBITMQ_CONFIG
from dagz.integ._amqp import DagzAmqpError, patch_connection, reroute_vhost


def _hooked(init: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        url = self.url
        kw = {
            "host": url.host or "127.0.0.1",
            "port": url.port or 5672,
            "user": url.user or "guest",
            "password": url.password or "guest",
        }
        new = reroute_vhost(self.vhost, kw)
        if new is not None:
            self.vhost = new

    return __init__


def install() -> None:
    patch_connection("aiormq.connection", "__init__", _hooked)


install()

__all__ = ["RABBITMQ_CONFIG", "DagzAmqpError"]
