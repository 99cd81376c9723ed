"""DAGZ API for RabbitMQ through pika: `RABBITMQ_CONFIG` (the same object as in
`dagz.integ.kombu` and `dagz.integ.aio_pika`).

The hook sits on `pika.connection.Connection.__init__`, which every adapter (BlockingConnection,
SelectConnection, AsyncioConnection, …) runs with its own (deep) copy of the parameters
(``ConnectionParameters`` or ``URLParameters``): that copy's ``virtual_host`` is rerouted, the
caller's parameters object is left as it was.
"""

from __future__ import annotations

import functools
from typing import Any

from dagz.families import RABBITMQ_CONFIG
from dagz.integ._amqp import MARK, DagzAmqpError, reroute_vhost, wrapped


def install() -> None:
    try:
        from pika import connection
    except ImportError:
        return
    cls = connection.Connection
    init = cls.__init__
    if wrapped(init):
        return

    @functools.wraps(init)
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
            return
        init(self, parameters, *args, **kwargs)

    setattr(__init__, MARK, True)
    cls.__init__ = __init__


install()

__all__ = ["RABBITMQ_CONFIG", "DagzAmqpError"]
