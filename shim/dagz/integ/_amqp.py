"""What the AMQP driver hooks (`dagz.integ.pika`, `.kombu`, `.aio_pika`) share: resolving a
vhost through `RABBITMQ_CONFIG` for one connect, failing closed with a `dagz:` error."""

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
    if RABBITMQ_CONFIG._conf is None or not STATE.reroute:
        return None
    name = vhost or "/"
    try:
        with endpoint(kw):
            return RABBITMQ_CONFIG.resolve(name)
    except DagzError as exc:
        raise DagzAmqpError(str(exc)) from None


def wrapped(obj: Any) -> bool:
    return bool(getattr(obj, MARK, False))


def patch_connection(module: str, method: str, make: Callable[[Any], Callable[..., Any]]) -> None:
    """Replaces `<module>.Connection.<method>` by `make(original)`, once; a driver that is not
    installed is skipped."""
    try:
        cls = importlib.import_module(module).Connection
    except ImportError:
        return
    original = getattr(cls, method)
    if wrapped(original):
        return
    hook = functools.wraps(original)(make(original))
    setattr(hook, MARK, True)
    setattr(cls, method, hook)
