"""The non-SQL families on the `DbConfig` lifecycle: `REDIS_CONFIG` (database indexes) and
`RABBITMQ_CONFIG` (virtual hosts).

Both reuse `DbConfig` as it is — `resolve` (decision, `worker_init` once, `prepare` once per test
and name), `bypass`, `maybe_reroute`, the manual-init helpers, `configure`'s checks — and change
only what assumes the shim's SQL naming: the per-worker suffix (``_jwNN``, computed here, as
the shim has no engine id for these families), the defaults, URL parsing, and `truncate`.

The "name" of a Redis database is its index as a string (``"0"``); of RabbitMQ, the vhost
(``"/"``). The hooks (`dagz.integ.redis`, `.pika`, `.kombu`, `.aio_pika`) resolve a name inside
`endpoint(connect kwargs)`, so the lifecycle knows which server the connect goes to.

Before a worker name is first used in a process it is *claimed* on its server: a Redis index
must be empty or recorded as dagz's (`dagz.engines.redis`), a vhost is created with the ``dagz``
tag or must carry it (`dagz.engines.rabbitmq`); an earlier run's leftovers are emptied then.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

from dagz import _bypass, _callbacks, _shim, lease
from dagz._state import STATE, log
from dagz.auto import AUTO
from dagz.config import (
    CONFIGS,
    DbConfig,
    PrepareFn,
    RewriteFn,
    Session,
    ShouldRerouteFn,
    WorkerInitFn,
    _Conf,
)
from dagz.errors import DagzError

#: Ids of these families in `dagz.config.CONFIGS` (not shim engine ids: the shim hooks no
#: Redis or AMQP client).
ENGINE_REDIS = 101
ENGINE_RABBITMQ = 102

_ENDPOINT: ContextVar[dict[str, Any] | None] = ContextVar("dagz_endpoint", default=None)
_REROUTED_NAME = re.compile(r"_jw\d{2,}$")


@contextmanager
def endpoint(connect_kwargs: dict[str, Any]) -> Iterator[None]:
    """The server of the connect being resolved (host, port, user, password, …)."""
    token = _ENDPOINT.set(connect_kwargs)
    try:
        yield
    finally:
        _ENDPOINT.reset(token)


class ServiceConfig(DbConfig):
    """A `DbConfig` for a family the shim does not see: names, defaults and claims."""

    default_endpoint: ClassVar[dict[str, Any]] = {}

    def __init__(self, family: str, engine: int, max_len: int) -> None:
        super().__init__(family, engine, max_len)
        #: Bumped at every test start: hooks compare it on their fast path (per-test prepare
        #: over connections an earlier test opened).
        self.gen = 0
        self._logical: dict[str, str] = {}
        self._claims: dict[tuple[str, str], _callbacks.Step] = {}
        self._last: dict[str, Any] | None = None
        #: Auto mode's rules (`dagz.auto`): the family's defaults, no prepare (serial-faithful),
        #: used while no conftest configured the family and auto mode applies.
        self._auto = _Conf(
            self.default_rewrite_db_name, self.default_should_reroute, None, None, False, False
        )

    def active_conf(self) -> _Conf | None:
        conf = self._conf
        if conf is None and AUTO.applies(self):
            return self._auto
        return conf

    def resolve(self, name: str, settings: Any = None) -> str | None:
        new = super().resolve(name, settings)
        if new is not None and self._conf is None:
            AUTO.used.add(self.family)
        return new

    # -- what differs from the SQL families -----------------------------------------------------

    def session(self) -> Session:
        num, count = _shim.worker()
        return Session(num, count, f"_jw{num:02}")

    def configure(  # type: ignore[override]
        self,
        rewrite_db_name: RewriteFn | None = None,
        should_reroute: ShouldRerouteFn | None = None,
        prepare: PrepareFn = None,
        *,
        worker_init: WorkerInitFn = None,
        single_worker_disable: bool = False,
        main_worker_bypass: bool = False,
    ) -> None:
        """As `DbConfig.configure`; `rewrite_db_name` and `should_reroute` default to the
        family's defaults and `prepare` to None, so the one-argument call works."""
        super().configure(
            self.default_rewrite_db_name if rewrite_db_name is None else rewrite_db_name,
            self.default_should_reroute if should_reroute is None else should_reroute,
            prepare,
            worker_init=worker_init,
            single_worker_disable=single_worker_disable,
            main_worker_bypass=main_worker_bypass,
        )
        self.install_hooks()

    def install_hooks(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def start_test(self) -> None:
        super().start_test()
        self.gen += 1

    def endpoint_kwargs(self) -> dict[str, Any]:
        kw = _ENDPOINT.get()
        if kw is not None:
            self._last = kw
            return kw
        return self._last if self._last is not None else dict(self.default_endpoint)

    def _target(self, name: str) -> str | None:
        # As DbConfig._target: the worker number is leased first (with the SQL families' names
        # when they are known), then the name made for it is leased on this server
        # (`dagz.lease.service`).
        conf = self.active_conf()
        if conf is None or not STATE.reroute or self.disabled_here():
            return None
        if not name or not conf.should_reroute(name):
            return None
        lease.ensure(self, name)
        new = self._checked_name(conf.rewrite_db_name(name, self.session()), name)
        if new == name:
            return None
        self._logical[new] = name
        lease.hold(self, new)
        return new

    def logical_of(self, new: str) -> str | None:
        return self._logical.get(new)

    def _maybe_prepare(self, new: str) -> None:
        self.claim(new)
        super()._maybe_prepare(new)

    def prepare_claimed(self, new: str) -> None:
        """`_maybe_prepare` of a name `resolve` gave this process before (so claimed already):
        the hooks' per-test step over a remembered decision, without the claim's lookup."""
        super()._maybe_prepare(new)

    def get_manual_init_db_name(self, name: str) -> str:
        new = super().get_manual_init_db_name(name)
        if new != name:
            self.claim(new)
        return new

    # -- URLs -----------------------------------------------------------------------------------

    def url_get(self, url: str) -> str | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def url_set(self, url: str, name: str) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def maybe_reroute_uri(self, uri: str) -> str:
        name = self.url_get(uri)
        if name is None:
            return uri
        new = self.resolve(name)
        return uri if new is None else self.url_set(uri, new)

    def get_manual_init_db_url(self, url: str) -> str:
        name = self.url_get(url)
        if name is None:
            return url
        new = self.get_manual_init_db_name(name)
        return url if new == name else self.url_set(url, new)

    # -- claims ---------------------------------------------------------------------------------

    def claim(self, new: str) -> None:
        """Makes `new` usable as this worker's (once per process and server)."""
        kw = self.endpoint_kwargs()
        key = (self.address(kw), new)
        step = self._claims.get(key)
        if step is None or not step.done.is_set():
            with self._lock:
                step = self._claims.get(key)
                first = step is None
                if first:
                    step = self._claims[key] = _callbacks.Step()
            assert step is not None
            if first:
                try:
                    with _callbacks.running(), _bypass.bypass():
                        self.claim_on_server(kw, new, self._logical.get(new, new))
                    if self._conf is None:  # auto mode: said in the summary, as SQL copies
                        line = (
                            f"{self.family}: worker {self.session().worker_num}: "
                            f"{self._logical.get(new, new)!r} -> {new!r} at {self.address(kw)} "
                            "(auto mode)"
                        )
                        with STATE.lock:
                            STATE.summary.append(line)
                except BaseException as exc:
                    step.error = exc
                finally:
                    step.done.set()
            else:
                step.wait()
        if step.error is not None:
            err = step.error
            raise (
                DagzError(str(err))
                if isinstance(err, DagzError)
                else DagzError(
                    f"{self.family}: claiming {new!r} failed: {type(err).__name__}: {err}"
                )
            )

    def claimed(self, kw: dict[str, Any]) -> list[str]:
        """The names this process claimed on the server of `kw`."""
        where = self.address(kw)
        return [n for (a, n), s in list(self._claims.items()) if a == where and s.error is None]

    def address(self, kw: dict[str, Any]) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def claim_on_server(self, kw: dict[str, Any], new: str, logical: str) -> None:
        raise NotImplementedError  # pragma: no cover - overridden

    def _check_own_database(self, db_name: str, what: str) -> None:
        with self._lock:
            known = db_name in self._rerouted or db_name in self._logical
        if not known:
            raise DagzError(
                f"{self.family}.{what}({db_name!r}) refused: not a name this worker was rerouted to"
            )


# -- Redis ----------------------------------------------------------------------------------------


class RedisConfig(ServiceConfig):
    """`REDIS_CONFIG`: the database index is rerouted.

    Mapping (`default_rewrite_db_name`): with D = the server's `databases` and N workers, each
    block has B = D // (N + 1) indexes. Indexes 0 … B-1 stay the application's own (never
    written by a rerouted client); worker w uses the block B·(w+1) … B·(w+2)-1, logical index
    l going to B·(w+1) + l. A logical index l ≥ B fails closed, saying how many databases are
    needed. Example: D = 16, N = 4: B = 3, worker 0 -> 3, 4, 5, worker 3 -> 12, 13, 14.
    """

    default_endpoint: ClassVar[dict[str, Any]] = {"host": "127.0.0.1", "port": 6379}

    def install_hooks(self) -> None:
        from dagz.integ import redis as hooks

        hooks.install()

    def address(self, kw: dict[str, Any]) -> str:
        from dagz.engines.redis import address

        return address(kw)

    #: Indexes per worker block; None: D // (N + 1). Set it (before the first connect) when
    #: several runs share one server: a worker that took another number than its own because a
    #: concurrent run leases its indexes (`dagz.lease`) uses block ``number + 1``, which must
    #: be below D.
    block_size: int | None = None

    def block(self, session: Session) -> tuple[int, int]:
        """(B, D): indexes per block and the server's `databases`."""
        from dagz.engines.redis import databases

        kw = self.endpoint_kwargs()
        total = databases(kw)
        if self.block_size is not None:
            return max(int(self.block_size), 1), total
        return total // (max(session.worker_count, 1) + 1), total

    def default_rewrite_db_name(self, db_name: str, session: Session) -> str:
        index = _redis_index(db_name)
        size, total = self.block(session)
        workers = max(session.worker_count, 1)
        new = size * (session.worker_num + 1) + index
        if index < size and new >= total:  # a worker number beyond the run's (a lease moved it)
            raise DagzError(
                f"REDIS_CONFIG: worker {session.worker_num}'s copy of Redis index {index} would "
                f"be index {new}, the server at {self.address(self.endpoint_kwargs())} has "
                f"databases={total} (blocks of {size}{_moved(session)}). Set "
                "REDIS_CONFIG.block_size to the indexes the application uses, or raise "
                "`databases` in redis.conf"
            )
        if index >= size and self.block_size is not None:
            raise DagzError(
                f"REDIS_CONFIG: Redis index {index} is outside the worker blocks: "
                f"REDIS_CONFIG.block_size is {size}; raise it to at least {index + 1}"
            )
        if index >= size:
            need = (workers + 1) * (index + 1)
            where = self.address(self.endpoint_kwargs())
            raise DagzError(
                f"REDIS_CONFIG: Redis index {index} cannot get a per-worker index: {workers} "
                f"worker(s) plus the application's own indexes need {need} databases "
                f"({workers + 1} blocks of {index + 1}), the server at {where} has "
                f"databases={total}. Raise it (`databases {need}` in redis.conf, then restart "
                "redis-server) or run fewer workers"
            )
        return str(new)

    def default_should_reroute(self, db_name: str) -> bool:
        """Every index (a name that is a non-negative integer)."""
        return db_name.isdigit()

    def channel_prefix(self) -> str:
        """What pub/sub channel names get on a rerouted connection: ``dz_jw03:``."""
        return f"dz{self.session().suffix}:"

    def claim_on_server(self, kw: dict[str, Any], new: str, logical: str) -> None:
        from dagz.engines import redis as engine

        index = _redis_index(new)
        if engine.claim(kw, index, self.session().worker_num, logical):
            engine.flush(kw, [index])  # an earlier run's keys
        log(f"REDIS_CONFIG: index {logical} -> {index} at {engine.address(kw)}")

    def worker_indexes(self, kw: dict[str, Any]) -> list[int]:
        return sorted(int(n) for n in self.claimed(kw))

    def truncate(self, db_name: str, **connect_kwargs: Any) -> list[str]:
        """FLUSHDB of `db_name` (one of this worker's indexes) — a `prepare` body."""
        from dagz.engines import redis as engine

        self._check_own_database(db_name, "truncate")
        kw = connect_kwargs or self.endpoint_kwargs()
        return engine.truncate(db_name, **kw)

    def url_get(self, url: str) -> str | None:
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qs(parts.query)
        if "db" in query:
            return query["db"][0]
        path = parts.path.strip("/")
        return path if path else "0"

    def url_set(self, url: str, name: str) -> str:
        parts = urllib.parse.urlsplit(url)
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "db"]
        if parts.scheme == "unix":
            query.append(("db", name))
            return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
        return urllib.parse.urlunsplit(
            parts._replace(path=f"/{name}", query=urllib.parse.urlencode(query))
        )


def _moved(session: Session) -> str:
    if session.worker_num < max(session.worker_count, 1):
        return ""
    return (
        f"; this worker took number {session.worker_num}, beyond the run's "
        f"{session.worker_count}, because lower ones are leased by other live runs"
    )


def _redis_index(name: str) -> int:
    try:
        value = int(name)
    except (TypeError, ValueError):
        raise DagzError(f"REDIS_CONFIG: {name!r} is not a Redis database index") from None
    if value < 0:
        raise DagzError(f"REDIS_CONFIG: {name!r} is not a Redis database index")
    return value


# -- RabbitMQ -------------------------------------------------------------------------------------


class RabbitConfig(ServiceConfig):
    """`RABBITMQ_CONFIG`: the virtual host is rerouted.

    Mapping (`default_rewrite_db_name`): ``/`` -> ``dz_jw03`` (worker 3), any other vhost
    ``shop`` -> ``shop_jw03``. Each is created on first use (`dagz.engines.rabbitmq`), tagged
    ``dagz``, and emptied when an earlier run left it.
    """

    default_endpoint: ClassVar[dict[str, Any]] = {
        "host": "127.0.0.1",
        "port": 5672,
        "user": "guest",
        "password": "guest",
    }
    #: Management API base URL; None: ``http://<host>:15672``.
    management_url: str | None = None

    def install_hooks(self) -> None:
        from dagz.integ import aio_pika, kombu, pika

        for module in (pika, kombu, aio_pika):
            module.install()

    def address(self, kw: dict[str, Any]) -> str:
        host = str(kw.get("host") or "127.0.0.1")
        return f"{'127.0.0.1' if host == 'localhost' else host}:{kw.get('port') or 5672}"

    def default_rewrite_db_name(self, db_name: str, session: Session) -> str:
        return f"dz{session.suffix}" if db_name in ("/", "") else f"{db_name}{session.suffix}"

    def default_should_reroute(self, db_name: str) -> bool:
        """Every vhost (``/`` included) but names already of the ``…_jwNN`` form."""
        return _REROUTED_NAME.search(db_name) is None

    def _admin_kwargs(self, kw: dict[str, Any]) -> dict[str, Any]:
        out = dict(kw)
        if self.management_url:
            out["management_url"] = self.management_url
        return out

    def claim_on_server(self, kw: dict[str, Any], new: str, logical: str) -> None:
        from dagz.engines import rabbitmq as engine

        admin = self._admin_kwargs(kw)
        if engine.ensure_vhost(admin, new, logical, self.session().worker_num):
            engine.empty(admin, new)  # an earlier run's queues and exchanges
        log(f"RABBITMQ_CONFIG: vhost {logical!r} -> {new!r} at {self.address(kw)}")

    def truncate(self, db_name: str, **connect_kwargs: Any) -> list[str]:
        """Deletes the queues and exchanges of `db_name` (this worker's vhost) — a `prepare`
        body."""
        from dagz.engines import rabbitmq as engine

        self._check_own_database(db_name, "truncate")
        kw = self._admin_kwargs(connect_kwargs or self.endpoint_kwargs())
        return engine.empty(kw, db_name)

    def url_get(self, url: str) -> str | None:
        path = urllib.parse.urlsplit(url).path
        return "/" if path in ("", "/") else urllib.parse.unquote(path[1:])

    def url_set(self, url: str, name: str) -> str:
        parts = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(name, safe="")))


REDIS_CONFIG = RedisConfig("REDIS_CONFIG", ENGINE_REDIS, 10)
RABBITMQ_CONFIG = RabbitConfig("RABBITMQ_CONFIG", ENGINE_RABBITMQ, 255)
# The plugin starts each test on every config in CONFIGS and reports the configured ones.
CONFIGS[ENGINE_REDIS] = REDIS_CONFIG
CONFIGS[ENGINE_RABBITMQ] = RABBITMQ_CONFIG
