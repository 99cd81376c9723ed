"""DAGZ API for RabbitMQ through kombu / py-amqp (Celery's ``amqp://`` and ``pyamqp://``
brokers): `RABBITMQ_CONFIG` (the same object as in `dagz.integ.pika` and `.aio_pika`).

The hook sits on `amqp.Connection.connect`: the vhost kombu parsed from the broker URL
(``amqp://guest@127.0.0.1//`` is ``/``) is rerouted right before the connection opens, in the
caller's thread and context; a reconnect (a new `amqp.Connection`) is rerouted again. Every
AMQP method goes through ``AbstractChannel.send_method``: a connection kept from an earlier
test runs `prepare` first there (`dagz.integ._amqp.check`).
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


def _endpoint(conn: Any) -> dict[str, Any]:
    host, _, port = str(conn.host).rpartition(":")
    if not host:
        host, port = port, "5672"
    user, password = "guest", "guest"
    for auth in getattr(conn, "authentication", ()):  # PLAIN / AMQPLAIN carry the login
        if getattr(auth, "username", None) is not None:
            user, password = auth.username, auth.password
            break
    return {"host": host, "port": int(port), "user": user, "password": password}


def _hooked(connect: Any) -> Any:
    def _connect(self: Any, callback: Any = None) -> Any:
        logical = self.__dict__.setdefault("_dagz_vhost", self.virtual_host)
        kw = _endpoint(self)
        new = reroute_vhost(logical, kw)
        self.virtual_host = logical if new is None else new
        if new is not None:
            remember(self, logical, kw)
        return connect(self, callback)

    return _connect


def install() -> None:
    patch_connection("amqp.connection", "connect", _hooked)
    patch_channel("amqp.abstract_channel", "AbstractChannel", "send_method")


install()

__all__ = ["RABBITMQ_CONFIG", "DagzAmqpError"]
