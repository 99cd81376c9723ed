"""DAGZ API for RabbitMQ through pika: `RABBITMQ_CONFIG` (the same object as in
`dagz.integ.kombu` and `dagz.integ.aio_pika`).

The hook sits on `pika.connection.Connection.__init__`, which every adapter (BlockingConnection,
SelectConnection, AsyncioConnection, …) runs with its own (deep) copy of the parameters
(``ConnectionParameters`` or ``URLParameters``): that copy's ``virtual_host`` is rerouted, the
caller's parameters object is left as it was. Every AMQP method goes through
``Channel._send_method``: a connection kept from an earlier test runs `prepare` first there
(`dagz.integ._amqp.check`).
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
    def __init__(self: Any, parameters: Any = None, *args: Any, **kwargs: Any) -> None:
        if parameters is not None:
            creds = getattr(parameters, "credentials", None)
            kw = {
                "host": parameters.host,
                "port": parameters.port,
                "user": getattr(creds, "username", "guest"),
                "password": getattr(creds, "password", "guest"),
            }
            new = reroute_vhost(parameters.virtual_host, kw)
            init(self, parameters, *args, **kwargs)
            if new is not None:
                self.params.virtual_host = new  # pika's own copy; the caller's is unchanged
                remember(self, parameters.virtual_host, kw)
            return
        init(self, parameters, *args, **kwargs)

    return __init__


def install() -> None:
    patch_connection("pika.connection", "__init__", _hooked)
    patch_channel("pika.channel", "Channel", "_send_method")


install()

__all__ = ["RABBITMQ_CONFIG", "DagzAmqpError"]
