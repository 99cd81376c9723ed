"""A worker database that still cannot be rebuilt gets a fresh name (issue 12).

Before rebuilding or dropping a worker database dagz rolls back its PostgreSQL prepared
transactions and ends its other sessions. Some blockers remain that dagz may not remove: a
MariaDB prepared XA transaction (``XA RECOVER`` does not say which database it touches), a
PostgreSQL replication slot or subscription in that database, a prepared transaction or a
session of another role dagz has no right to end. Then, rather than failing every test of the
worker, `provision_or_fresh` provisions ``<worker name>_f1`` (``_f2``, ``_f3`` when that one is
blocked too or leased by another live run), and this run uses it:

* the worker's `DbConfig` reroutes the base there (`renamed`), leases it and `create_worker_init`
  stamps it (the same stamp as any worker copy: ``dagz db list/drop`` know the ``…_fN`` shape);
* ``DAGZ_RENAME`` (``pg:myapp=myapp_jw03_f1,mysql:audit=audit_jw03_f1``) is set in the
  worker's environment, so its children — routed by the shim's policy, without the decision
  callback — land on the fresh name too (`src/core/rename.rs`);
* the blocked copy is left alone, and the summary names it, the reason and how to clean it up.

A later run tries the worker's usual name first: once the blocker is gone it is rebuilt and used
again (the ``_fN`` copy then stays until ``dagz db drop``). While the blocker stays, the later run
reaches the same ``_f1`` and keeps it by the warm start when its base did not change, so blocked
runs do not pile up copies.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from dagz import _shim, envvars, lease
from dagz._bypass import hard_bypass
from dagz._state import STATE, log
from dagz.engines import for_engine
from dagz.engines.base import Outcome
from dagz.errors import DagzError, EngineError

if TYPE_CHECKING:
    from dagz.config import DbConfig

#: Fresh names tried per blocked worker database (``_f1`` … ``_f3``).
FRESH_TRIES = 3

_LABELS = {_shim.ENGINE_POSTGRES: "pg", _shim.ENGINE_MYSQL: "mysql"}
_lock = threading.Lock()
#: (engine label, base) -> this process's fresh name for it.
_RENAMED: dict[tuple[str, str], str] = {}


def _label(engine: int) -> str:
    return _LABELS[engine]


def renamed(engine: int, base: str) -> str | None:
    """This run's fresh name for `base`, or None when its worker database is the usual one
    (always for Redis/RabbitMQ, which have no fresh names)."""
    if engine not in _LABELS:
        return None
    with _lock:
        return _RENAMED.get((_label(engine), base))


def is_fresh(engine: int, name: str) -> bool:
    """Whether `name` is one of this run's fresh names (a worker database already)."""
    if engine not in _LABELS:
        return False
    label = _label(engine)
    with _lock:
        return any(e == label and f == name for (e, _), f in _RENAMED.items())


def _record(engine: int, base: str, fresh: str) -> None:
    """Reroutes `base` to `fresh` in this process and (``DAGZ_RENAME``) in its children."""
    with _lock:
        _RENAMED[(_label(engine), base)] = fresh
        os.environ[envvars.RENAME] = ",".join(f"{e}:{b}={f}" for (e, b), f in _RENAMED.items())


def candidates(cfg: DbConfig, target: str) -> Iterator[str]:
    """The fresh names for `target`, within the family's name limit (`DbConfig.max_len`)."""
    for k in range(1, FRESH_TRIES + 1):
        name = f"{target}_f{k}"
        if cfg.name_size(name) <= cfg.max_len:
            yield name


def usable(base: str, target: str) -> bool:
    """Whether `base=target` can be written into ``DAGZ_RENAME``."""
    return not any(c in s for s in (base, target) for c in ",=:") and base != target


def provision_or_fresh(
    cfg: DbConfig,
    base: str,
    target: str,
    provision: Callable[[str], Outcome],
    connect_kwargs: dict[str, Any],
) -> tuple[str, Outcome]:
    """``provision(target)``; when that fails with an engine error and `target` exists (a
    leftover copy that cannot be rebuilt), ``provision`` of the first fresh name that works.
    Returns the name used and its outcome; the first error when no fresh name works either.

    A failure that a new copy has too (the server, the base, a privilege) is not worked around:
    when a fresh name that did not exist fails, it is dropped (dagz made it just now, under its
    lease) and the first error raised."""
    try:
        return target, provision(target)
    except EngineError as exc:
        # Another run's lease is never worked around; a copy that is not there is not blocked.
        if "in use by a live run" in str(exc) or not _exists(cfg, target, connect_kwargs):
            raise
        blocked = exc
    log(f"{cfg.family}: {target} cannot be rebuilt: {blocked}; trying a fresh name")
    for fresh in candidates(cfg, target):
        if not usable(base, fresh):
            break
        existed = True
        try:
            lease.hold(cfg, fresh)
            existed = _exists(cfg, fresh, connect_kwargs)
            outcome = provision(fresh)
        except (EngineError, DagzError) as exc:
            log(f"{cfg.family}: fresh name {fresh} not usable either: {exc}")
            if existed:  # blocked too (an earlier run's fresh copy): the next name
                continue
            _drop_quietly(cfg, fresh, connect_kwargs)
            break
        _record(cfg.engine, base, fresh)
        _report(cfg, base, target, fresh, blocked, connect_kwargs)
        return fresh, outcome
    raise blocked


def _exists(cfg: DbConfig, name: str, connect_kwargs: dict[str, Any]) -> bool:
    """Whether `name` exists (False when the server cannot say: the first error stands)."""
    try:
        with hard_bypass():
            return for_engine(cfg.engine).comment_of(name, **connect_kwargs)[0]
    except Exception:
        return False


def _drop_quietly(cfg: DbConfig, name: str, connect_kwargs: dict[str, Any]) -> None:
    try:
        with hard_bypass():
            for_engine(cfg.engine).drop(name, **connect_kwargs)
    except Exception as exc:  # the first error is the one to report
        log(f"{cfg.family}: dropping the half-built {name} failed too: {exc}")


def _report(
    cfg: DbConfig,
    base: str,
    target: str,
    fresh: str,
    why: EngineError,
    connect_kwargs: dict[str, Any],
) -> None:
    label = _label(cfg.engine)
    server = "".join(
        f" --{k} {connect_kwargs[k]}" for k in ("host", "port", "user") if connect_kwargs.get(k)
    )
    line = (
        f"{cfg.family}: {target} could not be rebuilt and was left alone; this run used {fresh}"
        f" (a fresh copy of {base}). Why: {str(why).removeprefix('dagz: ')}. To clean up: end"
        f" what holds it (see why), then `dagz db drop --engine {label}{server} --base {base}`"
        " (drops every worker copy of the base; the next run rebuilds them)"
    )
    log(line)
    with STATE.lock:
        STATE.summary.append(line)
