"""DAGZ API for Redis through redis-py (sync and ``redis.asyncio``): `REDIS_CONFIG`.

The hooks sit on redis-py's connection classes, so every way of making a client goes through
them (``Redis(db=…)``, ``from_url``, ``ConnectionPool``, Celery/kombu, RQ, django-redis):

* connect: when it starts (``connect_check_health``, before the TCP connect) the connection's
  ``db`` (the logical index) is resolved by `REDIS_CONFIG`; in the handshake
  (``on_connect_check_health``) the ``SELECT`` redis-py sends names the worker's index;
  ``connection.db`` keeps the logical index for the application;
* every command (``send_command``, ``pack_commands`` for pipelines): the fast path compares the
  connection's test generation with `REDIS_CONFIG.gen` (a new test runs `prepare` for the
  connection's index first) and looks the command name up in a set of the commands that are
  rewritten: ``SELECT n``/``SWAPDB``/``MOVE``/``COPY … DB n`` map indexes, ``FLUSHALL`` becomes a
  flush of this worker's indexes only, pub/sub channel names get the worker's prefix
  (``dz_jw03:``) and keyspace-notification channels (``__keyspace@0__:…``) the worker's index;
* received pub/sub messages (``PubSub.handle_message``) get the application's names back.

Not covered: other clients (``redis-cli`` run by a test, other languages), a ``SELECT`` inside a
Lua script, command names in mixed case beyond those listed, the replies of ``PUBSUB CHANNELS``
(they carry the prefixed names).
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

from dagz import lease
from dagz._bypass import is_bypassed
from dagz._callbacks import owned_by_callback
from dagz._state import STATE
from dagz.engines.redis import FLUSH_SCRIPT, address
from dagz.errors import DagzError
from dagz.families import REDIS_CONFIG, endpoint

_MARK = "__dagz_wrapped__"

#: A connection's `_dagz_d` outside a connect: the decision is made when the connect starts,
#: before the TCP connect (`connect_check_health`), and taken by the handshake
#: (`on_connect_check_health`). Made between the two, its few microseconds delayed the first
#: command after the TCP handshake, which cost ~40 µs of wall time per connect here (the
#: server side had gone idle meanwhile: a 6 µs busy wait there cost the same).
_UNDECIDED: Any = object()
_CFG = REDIS_CONFIG

_INDEX_CMDS = ("SELECT", "SWAPDB", "MOVE", "COPY", "FLUSHALL")
_PUB_CMDS = ("PUBLISH", "SPUBLISH")
_SUB_CMDS = ("SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE")
_ALL = (*_INDEX_CMDS, *_PUB_CMDS, *_SUB_CMDS, "PUBSUB")


def _case_variants(word: str) -> set[str]:
    pairs = [(c.lower(), c.upper()) for c in word]
    return {"".join(p) for p in itertools.product(*pairs)}


#: Every spelling (any case, str and bytes) of the rewritten commands: one set lookup decides.
_SPECIAL: frozenset[Any] = frozenset(
    v for w in _ALL for s in _case_variants(w) for v in (s, s.encode())
)

try:  # redis-py is optional: without it there is nothing to hook
    from redis.exceptions import RedisError as _RedisError
except ImportError:  # pragma: no cover
    _RedisError = Exception  # type: ignore[assignment,misc]


class DagzRedisError(DagzError, _RedisError):  # type: ignore[misc,valid-type]
    """A refused Redis connect or command (a RedisError, so redis-py drops the connection)."""


class _Route:
    """A rerouted connection: its server (dagz's own clients connect with `kw`), selected
    (physical) index, test generation and channel prefix."""

    __slots__ = ("bprefix", "cur", "gen", "kw", "prefix")

    def __init__(self, kw: dict[str, Any], cur: int, prefix: str, bprefix: bytes) -> None:
        self.kw = kw
        self.cur = cur
        self.gen = _CFG.gen
        self.prefix = prefix
        self.bprefix = bprefix


def _endpoint_of(conn: Any) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    path = getattr(conn, "path", None)
    if path:
        kw["unix_socket_path"] = path
    else:
        kw["host"] = getattr(conn, "host", "127.0.0.1")
        kw["port"] = getattr(conn, "port", 6379)
    for key in ("username", "password"):
        value = getattr(conn, key, None)
        if value is not None:
            kw[key] = value
    return kw


def _resolve(kw: dict[str, Any], index: object) -> int | None:
    """The worker's index for logical `index`, or None (not rerouted). Fails closed."""
    try:
        with endpoint(kw):
            new = _CFG.resolve(str(int(index)))  # type: ignore[call-overload]
    except DagzError as exc:
        raise DagzRedisError(str(exc)) from None
    except (TypeError, ValueError):
        raise DagzRedisError(f"dagz: {index!r} is not a Redis database index") from None
    return None if new is None else int(new)


class _Decision:
    """What connects to one logical index of one server share (`_MEMO`): the test generation
    it was last used in, the configuration and leased worker number it was made with, the
    physical index (None: not rerouted), the server's connect arguments, the channel prefix."""

    __slots__ = ("bprefix", "conf", "gen", "kw", "new", "number", "prefix")

    def __init__(self, conf: object, new: int | None, kw: dict[str, Any], gen: int) -> None:
        self.gen, self.conf, self.number, self.new, self.kw = gen, conf, lease.number(), new, kw
        self.prefix = _CFG.channel_prefix() if new is not None else ""
        self.bprefix = self.prefix.encode()


#: (server, credentials, logical index) -> `_Decision`. The decision depends on none of what
#: changes between tests: a later connect to the same index (same configuration and worker
#: number) reuses it; in the test it was made in, the lifecycle ran already, in a later test
#: only `prepare` is left.
_MEMO: dict[tuple[object, ...], _Decision] = {}


def _route_on_connect(conn: Any) -> _Decision | None:
    """The decision for `conn`'s connect (None: not rerouted, or dagz is off here). Fails
    closed (`DagzRedisError`)."""
    conn._dagz_r = None
    conf = _CFG.active_conf()  # the conftest's, or auto mode's (dagz.auto)
    if conf is None or not STATE.reroute or is_bypassed() or owned_by_callback():
        return None
    index = conn.db or 0
    key = (
        getattr(conn, "path", None),  # a UnixDomainSocketConnection has no host and port
        getattr(conn, "host", None),
        getattr(conn, "port", None),
        conn.username,
        conn.password,
        index,
    )
    hit = _MEMO.get(key)
    if hit is not None and hit.conf is conf and hit.number == lease.number():
        if hit.gen != _CFG.gen:
            # The per-test step: nothing to do without a `prepare` (the playbook's configure,
            # auto mode) inside a test; outside one it says where the connect went, once.
            if hit.new is not None and (conf.prepare is not None or STATE.current_test is None):
                _prepare(hit.kw, str(hit.new))
            hit.gen = _CFG.gen
        return hit if hit.new is not None else None
    gen = _CFG.gen  # read first: a test starting meanwhile gets its prepare next time
    kw = _endpoint_of(conn)
    decision = _MEMO[key] = _Decision(conf, _resolve(kw, index), kw, gen)
    return decision if decision.new is not None else None


def _prepare(kw: dict[str, Any], new: str) -> None:
    """`prepare` of index `new` once in this test (what is left of the lifecycle: `new` was
    claimed when the decision was made)."""
    try:
        with endpoint(kw):
            _CFG.prepare_claimed(new)
    except DagzError as exc:
        raise DagzRedisError(str(exc)) from None


def _new_test(r: _Route) -> None:
    """A test started since this connection's last command: `prepare` its index first."""
    r.gen = _CFG.gen
    try:
        with endpoint(r.kw):
            _CFG.resolve(_CFG.logical_of(str(r.cur)) or str(r.cur))
    except DagzError as exc:
        raise DagzRedisError(str(exc)) from None


def _rewrite(r: _Route, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return _REWRITES[_text(args[0]).upper()](r, args)


def _rw_select(r: _Route, args: tuple[Any, ...]) -> tuple[Any, ...]:
    if len(args) != 2:
        return args
    new = _resolve(r.kw, _text(args[1]))
    if new is None:
        return args
    r.cur = new
    return (args[0], new)


def _rw_flushall(r: _Route, args: tuple[Any, ...]) -> tuple[Any, ...]:
    indexes = sorted({*_CFG.worker_indexes(r.kw), r.cur})
    return ("EVAL", FLUSH_SCRIPT, 0, *indexes)


def _rw_swapdb(r: _Route, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0], *(_mapped(r, a) for a in args[1:])) if len(args) == 3 else args


def _rw_move(r: _Route, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*args[:2], _mapped(r, args[2])) if len(args) == 3 else args


def _rw_copy(r: _Route, args: tuple[Any, ...]) -> tuple[Any, ...]:
    out = list(args)
    for i in range(3, len(out) - 1):
        if _text(out[i]).upper() == "DB":
            out[i + 1] = _mapped(r, out[i + 1])
    return tuple(out)


def _rw_publish(r: _Route, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0], _channel(r, args[1]), *args[2:]) if len(args) >= 2 else args


def _rw_subscribe(r: _Route, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0], *(_channel(r, a) for a in args[1:]))


def _rw_pubsub(r: _Route, args: tuple[Any, ...]) -> tuple[Any, ...]:
    sub = _text(args[1]).upper() if len(args) >= 2 else ""
    if sub in ("NUMSUB", "SHARDNUMSUB"):
        return (*args[:2], *(_channel(r, a) for a in args[2:]))
    if sub in ("CHANNELS", "SHARDCHANNELS"):
        return (*args[:2], _channel(r, args[2] if len(args) > 2 else "*"))
    return args


_REWRITES = {
    "SELECT": _rw_select,
    "FLUSHALL": _rw_flushall,
    "SWAPDB": _rw_swapdb,
    "MOVE": _rw_move,
    "COPY": _rw_copy,
    "PUBSUB": _rw_pubsub,
    **dict.fromkeys(_PUB_CMDS, _rw_publish),
    **dict.fromkeys(_SUB_CMDS, _rw_subscribe),
}


def _mapped(r: _Route, index: object) -> int:
    new = _resolve(r.kw, _text(index))
    return int(_text(index)) if new is None else new


def _text(value: object) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


_KEYSPACE = ("__keyspace@", "__keyevent@")


def _channel(r: _Route, value: object) -> object:
    text = _text(value)
    if text.startswith(_KEYSPACE):  # Redis names these after the (physical) index
        head, _, rest = text.partition("@")
        db, sep, tail = rest.partition("__:")
        if sep:
            new = r.cur if db == "*" else _mapped(r, db)
            text = f"{head}@{new}__:{tail}"
        return text.encode("utf-8", "surrogateescape") if isinstance(value, bytes) else text
    if isinstance(value, (bytes, bytearray, memoryview)):
        return r.bprefix + bytes(value)
    return r.prefix + text


def _unchannel(r: _Route, value: Any) -> Any:
    """A received channel or pattern name as the application named it."""
    is_bytes = isinstance(value, bytes)
    if is_bytes and value.startswith(r.bprefix):
        return value[len(r.bprefix) :]
    if isinstance(value, str) and value.startswith(r.prefix):
        return value[len(r.prefix) :]
    text = _text(value)
    if text.startswith(_KEYSPACE):
        head, _, rest = text.partition("@")
        db, sep, tail = rest.partition("__:")
        logical = _CFG.logical_of(db) if sep else None
        if logical is not None:
            text = f"{head}@{logical}__:{tail}"
            return text.encode("utf-8", "surrogateescape") if is_bytes else text
    return value


def _strip(conn: Any, response: Any) -> Any:
    r = getattr(conn, "_dagz_r", None) if conn is not None else None
    if r is None or not isinstance(response, (list, tuple)) or len(response) < 2:
        return response
    kind = _text(response[0]).lower()
    out = list(response)
    out[1] = _unchannel(r, out[1])
    if kind == "pmessage" and len(out) > 2:
        out[2] = _unchannel(r, out[2])
    return out


# -- the hooks ------------------------------------------------------------------------------


def _hook_sync(cls: Any) -> None:
    on_connect = cls.on_connect_check_health
    send_command = cls.send_command
    pack_commands = cls.pack_commands
    if getattr(send_command, _MARK, False):
        return

    @functools.wraps(on_connect)
    def _on_connect(self: Any, check_health: bool = True) -> None:
        d = self._dagz_d
        if d is _UNDECIDED:
            d = _route_on_connect(self)
        if d is None:
            return on_connect(self, check_health)
        logical = self.db
        self.db = d.new
        try:
            on_connect(self, check_health)
        finally:
            self.db = logical
        self._dagz_r = _Route(d.kw, d.new, d.prefix, d.bprefix)  # type: ignore[arg-type]

    @functools.wraps(send_command)
    def _send_command(self: Any, *args: Any, **kwargs: Any) -> None:
        r = self._dagz_r
        if r is None:
            if self._sock is not None or not args or args[0] not in _SPECIAL:
                return send_command(self, *args, **kwargs)
            self.connect()
            r = self._dagz_r
            if r is None:
                return send_command(self, *args, **kwargs)
        elif r.gen == _CFG.gen and args[0] not in _SPECIAL:
            return send_command(self, *args, **kwargs)
        if r.gen != _CFG.gen:
            _new_test(r)
        if args[0] in _SPECIAL:
            args = _rewrite(r, args)
        return send_command(self, *args, **kwargs)

    _install(cls, on_connect_check_health=_on_connect, send_command=_send_command)
    _install(cls, pack_commands=_pack_commands_hook(pack_commands))
    connect = getattr(cls, "connect_check_health", None)
    if connect is None:  # an older redis-py: the decision is made in on_connect
        return

    @functools.wraps(connect)
    def _connect(self: Any, *args: Any, **kwargs: Any) -> None:
        if self._sock is not None:
            return connect(self, *args, **kwargs)
        self._dagz_d = _route_on_connect(self)
        try:
            return connect(self, *args, **kwargs)
        finally:
            self._dagz_d = _UNDECIDED

    _install(cls, connect_check_health=_connect)


def _pack_commands_hook(pack_commands: Any) -> Any:
    @functools.wraps(pack_commands)
    def _pack_commands(self: Any, commands: Any) -> Any:
        r = self._dagz_r
        if r is None:
            return pack_commands(self, commands)
        if r.gen != _CFG.gen:
            _new_test(r)
        cmds = [_rewrite(r, tuple(c)) if c and c[0] in _SPECIAL else c for c in commands]
        return pack_commands(self, cmds)

    return _pack_commands


def _hook_async(cls: Any) -> None:
    on_connect = cls.on_connect_check_health
    send_command = cls.send_command
    if getattr(send_command, _MARK, False):
        return

    @functools.wraps(on_connect)
    async def _on_connect(self: Any, check_health: bool = True) -> None:
        d = self._dagz_d
        if d is _UNDECIDED:
            d = _route_on_connect(self)
        if d is None:
            return await on_connect(self, check_health)
        logical = self.db
        self.db = d.new
        try:
            await on_connect(self, check_health)
        finally:
            self.db = logical
        self._dagz_r = _Route(d.kw, d.new, d.prefix, d.bprefix)  # type: ignore[arg-type]

    @functools.wraps(send_command)
    async def _send_command(self: Any, *args: Any, **kwargs: Any) -> None:
        r = self._dagz_r
        if r is None:
            if self.is_connected or not args or args[0] not in _SPECIAL:
                return await send_command(self, *args, **kwargs)
            await self.connect()
            r = self._dagz_r
            if r is None:
                return await send_command(self, *args, **kwargs)
        elif r.gen == _CFG.gen and args[0] not in _SPECIAL:
            return await send_command(self, *args, **kwargs)
        if r.gen != _CFG.gen:
            _new_test(r)
        if args[0] in _SPECIAL:
            args = _rewrite(r, args)
        return await send_command(self, *args, **kwargs)

    _install(cls, on_connect_check_health=_on_connect, send_command=_send_command)
    _install(cls, pack_commands=_pack_commands_hook(cls.pack_commands))
    connect = getattr(cls, "connect_check_health", None)
    if connect is None:  # an older redis-py: the decision is made in on_connect
        return

    @functools.wraps(connect)
    async def _connect(self: Any, *args: Any, **kwargs: Any) -> None:
        if self.is_connected:
            return await connect(self, *args, **kwargs)
        self._dagz_d = _route_on_connect(self)
        try:
            return await connect(self, *args, **kwargs)
        finally:
            self._dagz_d = _UNDECIDED

    _install(cls, connect_check_health=_connect)


def _install(cls: Any, **fns: Any) -> None:
    for name, fn in fns.items():
        setattr(fn, _MARK, True)
        setattr(cls, name, fn)
    cls._dagz_r = None
    cls._dagz_d = _UNDECIDED


def _hook_pubsub(cls: Any, is_async: bool) -> None:
    handle = cls.handle_message
    if getattr(handle, _MARK, False):
        return
    if is_async:

        @functools.wraps(handle)
        async def _handle(self: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
            response = _strip(self.connection, response)
            return await handle(self, response, *args, **kwargs)

    else:

        @functools.wraps(handle)
        def _handle(self: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
            response = _strip(self.connection, response)
            return handle(self, response, *args, **kwargs)

    setattr(_handle, _MARK, True)
    cls.handle_message = _handle


def install() -> None:
    """Hooks redis-py (sync and asyncio) once; without redis-py, nothing."""
    try:
        from redis import client, connection
    except ImportError:
        return
    _hook_sync(connection.AbstractConnection)
    _hook_pubsub(client.PubSub, is_async=False)
    try:
        from redis.asyncio import client as aclient
        from redis.asyncio import connection as aconnection
    except ImportError:  # pragma: no cover
        return
    _hook_async(aconnection.AbstractConnection)
    _hook_pubsub(aclient.PubSub, is_async=True)


install()

__all__ = ["REDIS_CONFIG", "DagzRedisError", "address"]
