"""Turning rerouting off for a block of code.

`bypass()` is per thread *and* per asyncio task: it is a ContextVar, which the decision callback
consults (a ctypes callback runs synchronously in the connecting thread, inside the connecting
task's context). The shim's own thread-local bypass is *not* entered by it, because a
thread-local is shared by every task on the loop's thread — except when no decision callback is
registered, where the thread-local is all the shim can see.

Outside a dagz pytest worker (a child process of a test, a script with the shim preloaded) no
callback is registered; the first `bypass()` then registers one that only answers "bypassed: keep
the name" or "the policy decides", so that there too the bypass is per task, not per thread.

`hard_bypass()` enters both; it is for dagz's own synchronous helpers (truncate, cloning), which
never await inside.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from dagz import _shim

_DEPTH: ContextVar[int] = ContextVar("dagz_bypass_depth", default=0)

#: Set by the plugin when it registers the decision callback.
callback_registered = False


def is_bypassed() -> bool:
    return _DEPTH.get() > 0


@contextmanager
def bypass() -> Iterator[None]:
    _ensure_task_local()
    token = _DEPTH.set(_DEPTH.get() + 1)
    thread_level = not callback_registered
    if thread_level:
        _shim.bypass_enter()
    try:
        yield
    finally:
        if thread_level:
            _shim.bypass_exit()
        _DEPTH.reset(token)


def _policy_unless_bypassed(engine: int, name: str) -> tuple[int, str]:
    return (_shim.CB_KEEP if is_bypassed() else _shim.CB_DEFAULT), ""


def _ensure_task_local() -> None:
    """With the shim preloaded and no plugin callback, register the bypass-only callback."""
    global callback_registered  # noqa: PLW0603 - the plugin sets it too (module state)
    if callback_registered or not _shim.PRELOADED:
        return
    _shim.set_decision_callback(_policy_unless_bypassed)
    callback_registered = True


@contextmanager
def hard_bypass() -> Iterator[None]:
    token = _DEPTH.set(_DEPTH.get() + 1)
    _shim.bypass_enter()
    try:
        yield
    finally:
        _shim.bypass_exit()
        _DEPTH.reset(token)
