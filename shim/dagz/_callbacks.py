"""Running a user callback (`worker_init`, `prepare`) with no lock held.

While a callback runs, the connects it makes are its own: they are not rerouted (the callback
runs inside `bypass()`), and they must never wait for the lifecycle step that is running the
callback — that would deadlock. A callback may connect from threads it starts (a thread it
joins, a thread pool it waits on); a ContextVar does not follow a new thread, so those threads
are marked here as the callback's own for as long as the callback runs:

* `threading.Thread.start` called inside a callback marks the new thread;
* `ThreadPoolExecutor.submit` called inside a callback marks the pool thread while it runs
  the submitted function.

Any other thread that connects meanwhile is not the callback's: it waits for the step to finish
(`Step.wait`), with no lock held by anyone while user code runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_CURRENT: ContextVar[_Run | None] = ContextVar("dagz_callback", default=None)
#: thread ident -> the callback run that started it (while that run lasts).
_THREADS: dict[int, _Run] = {}


class _Run:
    """One running callback."""

    def __init__(self) -> None:
        self.active = True


def owned_by_callback() -> bool:
    """True in a callback, or in a thread a running callback started."""
    run = _CURRENT.get()
    if run is not None and run.active:
        return True
    run = _THREADS.get(threading.get_ident())
    return run is not None and run.active


@contextmanager
def running() -> Iterator[None]:
    """The block runs a user callback."""
    run = _Run()
    token = _CURRENT.set(run)
    try:
        yield
    finally:
        run.active = False
        _CURRENT.reset(token)


class Step:
    """A lifecycle step done once (`worker_init`, one `prepare`): the first caller runs it with
    no lock held; concurrent callers that are not the callback's own wait for its end."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None

    def wait(self) -> None:
        self.done.wait()


# -- marking threads a callback starts ---------------------------------------------------------

_orig_start = threading.Thread.start
_orig_submit = ThreadPoolExecutor.submit


def _start(self: threading.Thread) -> None:
    owner = _CURRENT.get()
    if owner is None or not owner.active:
        return _orig_start(self)
    run = self.run

    def owned_run() -> None:
        ident = threading.get_ident()
        _THREADS[ident] = owner
        try:
            run()
        finally:
            _THREADS.pop(ident, None)

    self.run = owned_run  # type: ignore[method-assign]
    return _orig_start(self)


def _submit(
    self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Future[Any]:
    owner = _CURRENT.get()
    if owner is None or not owner.active:
        return _orig_submit(self, fn, *args, **kwargs)

    def owned(*a: Any, **kw: Any) -> Any:
        ident = threading.get_ident()
        before = _THREADS.get(ident)
        _THREADS[ident] = owner
        try:
            return fn(*a, **kw)
        finally:
            if before is None:
                _THREADS.pop(ident, None)
            else:
                _THREADS[ident] = before

    return _orig_submit(self, owned, *args, **kwargs)


def install() -> None:
    """Patch once; both patches pass straight through outside callbacks."""
    if threading.Thread.start is not _start:
        threading.Thread.start = _start  # type: ignore[method-assign]
    if ThreadPoolExecutor.submit is not _submit:
        ThreadPoolExecutor.submit = _submit  # type: ignore[method-assign]
