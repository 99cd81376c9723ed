"""Worker leases on a Redis server and a RabbitMQ broker: the same surface as the SQL servers'
`dagz.lease.server._Server` (``try_take``/``give_back``/``refresh``/``close``), held by
connections of this process, so that a killed run frees its leases with its connections.

* Redis (`RedisLease`): one connection per leased index, named ``dagz-lease:i<index>:p<pid>``
  (``CLIENT SETNAME``, server-wide: no key in any index). A process takes index ``n`` when,
  after naming its connection, ``CLIENT LIST`` shows no *other* connection with the name's
  ``dagz-lease:i<n>:`` part. Two processes naming theirs at the same moment may both see the
  other and both give up (each then tries its next worker number); both winning is impossible:
  whichever lists last sees the name the other set before its own listing.
* RabbitMQ (`AmqpLease`): an exclusive queue ``dagz.lease`` declared in the worker vhost on a
  connection of this process (py-amqp, else pika; no heartbeats, so an idle connection is
  never dropped). The broker refuses the declare (``RESOURCE_LOCKED``) while another connection
  holds it, and deletes it when that connection ends. The vhost is made first (tagged ``dagz``),
  as a worker's first connect would; `dagz.engines.rabbitmq.empty` never deletes the lease queue.

A server that refuses the mechanism (``CLIENT`` not allowed to the user, no AMQP driver) raises
`Unsupported`: the caller falls back to machine-local lease files.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

from dagz._bypass import bypass
from dagz._state import log
from dagz.engines.rabbitmq import LEASE_QUEUE as AMQP_QUEUE
from dagz.errors import DagzError

#: ``CLIENT SETNAME`` prefix of Redis lease connections.
REDIS_PREFIX = "dagz-lease:i"


class Unsupported(Exception):
    """The server cannot hold leases this way (the caller uses lease files)."""


class _ServiceLease:
    start: set[str] | None = None  # no cluster-wide objects are checked (`leftovers`)

    def __init__(self, engine: str, kw: dict[str, Any], label: str) -> None:
        self.engine = engine
        self.kw = dict(kw)
        self.label = label
        self.conns: dict[str, Any] = {}

    @property
    def held(self) -> set[str]:
        return set(self.conns)

    def try_take(self, name: str) -> bool:
        if name in self.conns:
            return True
        with bypass():
            conn = self._take(name)
        if conn is None:
            return False
        self.conns[name] = conn
        return True

    def give_back(self, name: str) -> None:
        conn = self.conns.pop(name, None)
        if conn is not None:
            self._close(conn)

    def close(self) -> None:
        for name in list(self.conns):
            self.give_back(name)

    def refresh(self) -> set[str]:
        """Checks every lease connection is alive (after each test); a lost one is taken again,
        or reported when another process took it meanwhile."""
        for name, conn in list(self.conns.items()):
            if self._alive(conn):
                continue
            self.conns.pop(name, None)
            self._close(conn)
            if not self.try_take(name):
                raise DagzError(
                    f"dagz: the worker lease on {self.engine} {name!r} at {self.label} was lost "
                    "(its connection ended) and another run holds it now"
                )
            log(f"{self.engine} lease on {name!r} at {self.label}: connection lost, taken again")
        return set()

    def _take(self, name: str) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _alive(self, conn: Any) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def _close(self, conn: Any) -> None:
        with contextlib.suppress(Exception):
            conn.close()


class RedisLease(_ServiceLease):
    """Leases of Redis indexes (names are the index as a string)."""

    def __init__(self, kw: dict[str, Any]) -> None:
        from dagz.engines.redis import address

        super().__init__("redis", kw, address(kw))

    def _take(self, name: str) -> Any:
        import redis

        from dagz.engines.redis import _client_kwargs

        mine = f"{REDIS_PREFIX}{int(name)}:"
        conn = redis.Redis(**_client_kwargs(self.kw), single_connection_client=True)
        try:
            conn.client_setname(f"{mine}p{os.getpid()}")
            me = conn.client_id()
            clients = conn.client_list(_type="normal")
        except redis.ResponseError as exc:
            conn.close()
            raise Unsupported(f"CLIENT SETNAME/LIST refused: {exc}") from None
        except redis.RedisError as exc:
            conn.close()
            raise DagzError(
                f"dagz: cannot take worker leases on Redis server {self.label}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        others = [
            c for c in clients if str(c.get("name", "")).startswith(mine) and int(c["id"]) != me
        ]
        if others:
            conn.close()
            return None
        return conn

    def _alive(self, conn: Any) -> bool:
        # The name, not a PING: a connection redis-py silently made again has lost it.
        try:
            with bypass():
                name = conn.client_getname()
        except Exception:
            return False
        text = name.decode() if isinstance(name, bytes) else str(name or "")
        return text.startswith(REDIS_PREFIX) and text.endswith(f":p{os.getpid()}")


class AmqpLease(_ServiceLease):
    """Leases of RabbitMQ vhosts (an exclusive queue in each)."""

    def __init__(self, kw: dict[str, Any], admin: dict[str, Any], cfg: Any) -> None:
        host = str(kw.get("host") or "127.0.0.1")
        super().__init__("rabbitmq", kw, f"{host}:{kw.get('port') or 5672}")
        self.admin = admin
        self.cfg = cfg

    def _take(self, name: str) -> Any:
        from dagz.engines import rabbitmq

        logical = self.cfg.logical_of(name) or name
        found = re.search(r"_jw(\d+)$", name)
        worker = int(found[1]) if found else -1
        try:
            rabbitmq.ensure_vhost(self.admin, name, logical, worker)
        except Exception as exc:
            raise DagzError(f"dagz: RABBITMQ_CONFIG: leasing vhost {name!r}: {exc}") from None
        try:
            import amqp
        except ImportError:
            return self._take_pika(name)
        conn = amqp.Connection(
            f"{self.kw.get('host') or '127.0.0.1'}:{self.kw.get('port') or 5672}",
            userid=str(self.kw.get("user") or "guest"),
            password=str(self.kw.get("password") or "guest"),
            virtual_host=name,
            heartbeat=0,
            connect_timeout=10,
        )
        try:
            conn.connect()
            conn.channel().queue_declare(AMQP_QUEUE, exclusive=True)
        except amqp.exceptions.ResourceLocked:
            self._close(conn)
            return None
        except Exception as exc:
            self._close(conn)
            raise DagzError(
                f"dagz: cannot take the worker lease on RabbitMQ vhost {name!r} at "
                f"{self.label}: {type(exc).__name__}: {exc}"
            ) from None
        return conn

    def _take_pika(self, name: str) -> Any:
        try:
            import pika
        except ImportError:
            raise Unsupported("neither py-amqp nor pika is installed") from None
        creds = pika.PlainCredentials(
            str(self.kw.get("user") or "guest"), str(self.kw.get("password") or "guest")
        )
        params = pika.ConnectionParameters(
            host=str(self.kw.get("host") or "127.0.0.1"),
            port=int(self.kw.get("port") or 5672),
            virtual_host=name,
            credentials=creds,
            heartbeat=0,
        )
        conn = pika.BlockingConnection(params)
        try:
            conn.channel().queue_declare(AMQP_QUEUE, exclusive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._close(conn)
            if exc.reply_code == 405:
                return None
            raise DagzError(
                f"dagz: cannot take the worker lease on RabbitMQ vhost {name!r}: {exc}"
            ) from None
        return conn

    def _alive(self, conn: Any) -> bool:
        try:
            if hasattr(conn, "drain_events"):  # py-amqp
                conn.send_heartbeat()
                return bool(conn.connected)
            conn.process_data_events(0)
            return bool(conn.is_open)
        except Exception:
            return False


def held_elsewhere(engine: str, name: str, connect_kwargs: dict[str, Any]) -> bool:
    """Whether a live process holds the lease on Redis index / RabbitMQ vhost `name` (the guard
    of ``dagz db drop``): a connection named for it in ``CLIENT LIST``, or the vhost's
    exclusive lease queue (it exists only while its connection lives)."""
    if engine == "redis":
        from dagz.engines import redis as engine_redis

        kw = engine_redis._kwargs(connect_kwargs)
        mine = f"{REDIS_PREFIX}{int(name)}:"
        with engine_redis.admin(kw, "listing the Redis lease connections failed") as client:
            clients = client.client_list(_type="normal")
        return any(str(c.get("name", "")).startswith(mine) for c in clients)
    import urllib.error

    from dagz.engines import rabbitmq

    api = rabbitmq._Api(dict(connect_kwargs))
    try:
        api.call("GET", f"/api/queues/{rabbitmq._q(name)}/{rabbitmq._q(AMQP_QUEUE)}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True
