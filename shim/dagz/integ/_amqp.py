"""What the AMQP driver hooks (`dagz.integ.pika`, `.kombu`, `.aio_pika`) share: resolving a
vhost through `RABBITMQ_CONFIG` for one connect, failing closed with a `dagz:` error, and
`prepare` over a connection kept from an earlier test.

The last is the Redis hooks' mechanism (`dagz.integ.redis`): a rerouted connection carries the
test generation it last ran `prepare` for (`remember`); each driver's per-method entry point
(pika ``Channel._send_method``, py-amqp ``AbstractChannel.send_method``, aiormq
``Channel.rpc``/``basic_publish``) compares it with `RABBITMQ_CONFIG.gen` (`check`) and, in a
new test, resolves the connection's vhost again first, which runs `prepare` once per test.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from dagz._state import STATE
from dagz.errors import DagzError
from dagz.families import RABBITMQ_CONFIG, endpoint

MARK = "__dagz_wrapped__"


class DagzAmqpError(DagzError):
    """A refused AMQP connect (its vhost could not be rerouted safely)."""


def reroute_vhost(vhost: str | None, kw: dict[str, Any]) -> str | None:
    """The worker's vhost for `vhost` (None, "" and "/" are the default vhost), or None when
    this connect is not rerouted."""
    if RABBITMQ_CONFIG.active_conf() is None or not STATE.reroute:
        return None
    name = vhost or "/"
    try:
        with endpoint(kw):
            return RABBITMQ_CONFIG.resolve(name)
    except DagzError as exc:
        raise DagzAmqpError(str(exc)) from None


class _Kept:
    """A rerouted connection's application vhost, server, and test generation."""

    __slots__ = ("gen", "kw", "logical")

    def __init__(self, logical: str | None, kw: dict[str, Any]) -> None:
        self.gen = RABBITMQ_CONFIG.gen
        self.logical = logical
        self.kw = kw


def remember(conn: Any, logical: str | None, kw: dict[str, Any]) -> None:
    """Marks `conn` (a driver's connection object) as rerouted in the current test."""
    conn._dagz_mq = _Kept(logical, kw)


def check(conn: Any) -> None:
    """Before a method on `conn`: in a test after the one it last prepared for, `prepare`
    runs first (the fast path is one attribute read and one comparison)."""
    kept = getattr(conn, "_dagz_mq", None)
    if kept is None or kept.gen == RABBITMQ_CONFIG.gen:
        return
    kept.gen = RABBITMQ_CONFIG.gen
    reroute_vhost(kept.logical, kept.kw)


def patch_channel(module: str, cls_name: str, *methods: str) -> None:
    """Wraps `<module>.<cls_name>.<method>` so that `check(self.connection)` runs first."""
    for method in methods:
        _patch(module, cls_name, method, _checked)


def _checked(original: Callable[..., Any]) -> Callable[..., Any]:
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        check(self.connection)
        return original(self, *args, **kwargs)

    return hook


def wrapped(obj: Any) -> bool:
    return bool(getattr(obj, MARK, False))


def patch_connection(module: str, method: str, make: Callable[[Any], Callable[..., Any]]) -> None:
    """Replaces `<module>.Connection.<method>` by `make(original)`, once; a driver that is not
    installed is skipped."""
    _patch(module, "Connection", method, make)


def _patch(
    module: str, cls_name: str, method: str, make: Callable[[Any], Callable[..., Any]]
) -> None:
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError):
        return
    original = getattr(cls, method)
    if wrapped(original):
        return
    hook = functools.wraps(original)(make(original))
    setattr(hook, MARK, True)
    setattr(cls, method, hook)
