"""DAGZ API for RabbitMQ through aio-pika / aiormq: `RABBITMQ_CONFIG` (the same object as in
`dagz.integ.pika` and `.kombu`).

The hook sits on `aiormq.Connection.__init__` (aio-pika's `connect`, `connect_robust` and their
reconnects all make one): the vhost parsed from the URL is rerouted there, in the connecting
task's context. A channel's methods go through ``Channel.rpc`` or ``Channel.basic_publish``:
a connection kept from an earlier test runs `prepare` first there (`dagz.integ._amqp.check`).
"""

from __future__ import annotations

from typing import Any

from dagz.families import RABBITMQ_CONFIG
from dagz.integ._amqp import (
    DagzAmqpError,
    patch_channel,
    patch_connection,
    remember,
    reroute_vhost,
)


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
        logical = self.vhost
        new = reroute_vhost(logical, kw)
        if new is not None:
            self.vhost = new
            remember(self, logical, kw)

    return __init__


def install() -> None:
    patch_connection("aiormq.connection", "__init__", _hooked)
    patch_channel("aiormq.channel", "Channel", "rpc", "basic_publish")


install()

__all__ = ["RABBITMQ_CONFIG", "DagzAmqpError"]
