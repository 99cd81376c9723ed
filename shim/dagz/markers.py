"""Cluster-wide state: `@pytest.mark.dagz_node_mutex` and the marker assertions.

Some objects are not per database (PostgreSQL roles, prepared-transaction ids, tablespaces,
replication slots; MariaDB users, global variables): tests that touch them collide across workers
whatever database each one uses.

* `@pytest.mark.dagz_node_mutex`: the test runs while no other test runs on any worker of the run
  (this machine). Every test holds a shared lock on the run's `node-mutex.lock` while it runs; a
  marked test holds it exclusively. A second lock, taken briefly by every test before its shared
  lock and held by a marked test while it waits, keeps a marked test from waiting forever behind
  a stream of other tests.
* `@pytest.mark.dagz_main_worker`: the test runs on worker 0 only (the scheduler).
* `assert_node_mutex()` / `assert_main_worker()`: fail the current test unless it carries the
  marker — put them in helpers that touch cluster-wide state.
* `assert_node_mutex_at(target)` / `assert_main_worker_at(target)`: guard a callable named by a
  dotted path (`"mypkg.admin.create_role"`) or given as `(owner, "attribute")`: a test that
  reaches it without the marker fails, even when it catches the exception.
"""

from __future__ import annotations

import fcntl
import functools
import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagz._state import STATE
from dagz.errors import DagzError

NODE_MUTEX = "dagz_node_mutex"
MAIN_WORKER = "dagz_main_worker"

#: Markers of the test now running in this process (set by the plugin).
_current_markers: set[str] = set()
#: Guard violations of the current test (the plugin fails the test with the first one).
violations: list[str] = []


def set_current(markers: set[str]) -> None:
    _current_markers.clear()
    _current_markers.update(markers)
    violations.clear()


def _check(marker: str, what: str) -> None:
    if STATE.current_test is None or marker in _current_markers:
        return
    msg = (
        f"dagz: {what} needs @pytest.mark.{marker} on the test ({STATE.current_test}): "
        "it changes state that is shared by every worker"
    )
    violations.append(msg)
    raise DagzError(msg)


def assert_node_mutex() -> None:
    """Fail the current test unless it is marked `dagz_node_mutex`."""
    _check(NODE_MUTEX, "this call")


def assert_main_worker() -> None:
    """Fail the current test unless it is marked `dagz_main_worker`."""
    _check(MAIN_WORKER, "this call")


def _resolve(target: str | tuple[Any, str]) -> tuple[Any, str]:
    if isinstance(target, tuple):
        return target
    module, _, attr = target.rpartition(".")
    if not module:
        raise DagzError(f"dagz: guard target {target!r} is not a dotted path 'module.name'")
    try:
        return importlib.import_module(module), attr
    except ImportError:
        owner_path, _, owner_attr = module.rpartition(".")
        return getattr(importlib.import_module(owner_path), owner_attr), attr


def _guard(target: str | tuple[Any, str], marker: str) -> None:
    owner, attr = _resolve(target)
    original: Callable[..., Any] = getattr(owner, attr)
    name = target if isinstance(target, str) else f"{owner!r}.{attr}"

    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _check(marker, name)
        return original(*args, **kwargs)

    setattr(owner, attr, guarded)


def assert_node_mutex_at(target: str | tuple[Any, str]) -> None:
    """Tests that call `target` must be marked `dagz_node_mutex`."""
    _guard(target, NODE_MUTEX)


def assert_main_worker_at(target: str | tuple[Any, str]) -> None:
    """Tests that call `target` must be marked `dagz_main_worker`."""
    _guard(target, MAIN_WORKER)


@contextmanager
def node_lock(run_dir: str | None, exclusive: bool) -> Iterator[None]:
    """The run-wide test lock (shared, or exclusive for a `dagz_node_mutex` test)."""
    if not run_dir:
        yield
        return
    base = Path(run_dir)
    gate = os.open(base / "node-mutex.gate", os.O_RDWR | os.O_CREAT, 0o600)
    main = os.open(base / "node-mutex.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(main, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield
    finally:
        os.close(main)  # releases the lock
        os.close(gate)
