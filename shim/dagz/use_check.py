"""Per-test work follows use, not connects.

A configured `prepare` runs at the connect the decision callback sees — but a connection pool
created at import (SQLAlchemy's default engine) keeps its connections from test to test, so
later tests would connect no more and run on an unprepared database. The shim therefore
remembers every connection it rerouted and, after `begin_test`, calls `on_use` before the first
statement of a test on a connection of an earlier test (`dagz_begin_test` in dagz.h); `on_use`
runs the family's `prepare` for that database once per test (the same bookkeeping as a connect's).
A failure fails the statement with the `dagz:` message and, through `STATE.prepare_errors`, the
test phase.
"""

from __future__ import annotations

from dagz import _bypass, _callbacks, _shim
from dagz._state import STATE
from dagz.config import CONFIGS
from dagz.errors import DagzError

_gen = 0
#: This test's generation is checked: a family with a `prepare` reroutes here.
_check = False
_installed = False


def install() -> None:
    """Registers the use callback (a worker with the shim preloaded; once a process)."""
    global _installed  # noqa: PLW0603 - module state, once a process
    if _installed or not _shim.has_use_check():
        return
    _shim.set_use_callback(on_use)
    _installed = True


def _checks_needed() -> bool:
    """A family configured with a `prepare` reroutes in this process."""
    if not STATE.reroute:
        return False
    for cfg in CONFIGS.values():
        conf = cfg._conf
        if conf is not None and conf.prepare is not None and not cfg.disabled_here():
            return True
    return False


def begin_test() -> None:
    """A test starts: connections of earlier tests are prepared again at their next statement."""
    _next_generation(_checks_needed())


def end_run() -> None:
    """No more checks (the run is over; statements at exit run no Python)."""
    _next_generation(False)


def _next_generation(check: bool) -> None:
    global _gen, _check  # noqa: PLW0603 - the test generation of this process
    _gen += 1
    _check = check
    if _installed:
        _shim.begin_test(_gen, check)


def generation() -> int:
    return _gen


def before_statement(engine: int, db: str, seen: int) -> str:
    """For the Python-level driver hooks (PyMySQL), which remember per connection its rerouted
    database and the generation `seen` it was prepared in: "" when the statement may run (its
    caller then records `generation()`), else the `dagz:` message it must fail with."""
    if not _check or seen == _gen:
        return ""
    return on_use(engine, db)


def on_use(engine: int, db: str) -> str:
    """The shim's use callback: "" to let the statement run, else its `dagz:` message."""
    cfg = CONFIGS.get(engine)
    if cfg is None or cfg._conf is None or not STATE.reroute:
        return ""
    if _bypass.is_bypassed() or _callbacks.owned_by_callback():
        return ""
    if STATE.current_test is None:
        return ""  # between tests (session fixtures, exit): nothing to prepare for
    try:
        cfg._maybe_prepare(db)
    except DagzError as exc:
        return str(exc)  # starts with "dagz:" (DagzError's own rule)
    except BaseException as exc:
        return f"dagz: {cfg.family} prepare({db!r}) failed: {type(exc).__name__}: {exc}"
    return ""
