"""Connections dagz cannot see are reported, not silently shared (issue 13).

In auto mode a worker's connects to base `B` go to `B_jwNN`; a connect dagz does not see (a
statically linked client, a driver it does not hook, a child started without the preload, a
connect inside `bypass()`) reaches `B` itself. Each worker reads the server's count of sessions
ever opened on `B` right after it built its copy, and again when it ends; a difference means `B`
received sessions while dagz was rerouting it. PostgreSQL: `pg_stat_database.sessions` (14+; a
new session is counted at its first idle moment or its end). MariaDB/MySQL have no per-database
counter: the sessions connected to `B` when the worker ends are counted instead.
The readings use the settings of the connect that built the copy, in memory only.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dagz import _bypass, _shim
from dagz.engines import for_engine
from dagz.engines.mysql.connection import sessions_in

_PG_SESSIONS = "SELECT sessions FROM pg_stat_database WHERE datname = %s"
_MY_SESSIONS = sessions_in("%s", "count(*)")


@dataclass
class _Watch:
    family: str
    engine: int
    base: str
    kwargs: dict[str, object]
    start: int | None


_lock = threading.Lock()
_watches: dict[tuple[int, str], _Watch] = {}


@contextlib.contextmanager
def _connection(engine: int, kwargs: dict[str, object]) -> Iterator[Any]:
    maintenance = "postgres" if engine == _shim.ENGINE_POSTGRES else None
    with _bypass.hard_bypass():
        conn = for_engine(engine).connect(maintenance, **kwargs)  # type: ignore[arg-type]
        try:
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.close()


def _reading(engine: int, base: str, kwargs: dict[str, object]) -> int | None:
    """The server's session count for `base` now (None: not readable)."""
    sql = _PG_SESSIONS if engine == _shim.ENGINE_POSTGRES else _MY_SESSIONS
    try:
        with _connection(engine, kwargs) as conn:
            cur = conn.cursor()
            cur.execute(sql, (base,))
            row = cur.fetchone()
            cur.close()
    except Exception:
        return None
    if row is None or row[0] is None:
        return None
    return int(row[0])


def watch(family: str, engine: int, base: str, kwargs: dict[str, object]) -> None:
    """Starts watching `base` (once per worker): the reading after the copy was built."""
    key = (engine, base)
    with _lock:
        if key in _watches:
            return
        _watches[key] = _Watch(family, engine, base, dict(kwargs), None)
    start = _reading(engine, base, kwargs) if engine == _shim.ENGINE_POSTGRES else 0
    with _lock:
        _watches[key].start = start


def finish() -> list[tuple[str, str, int]]:
    """(family, base, sessions dagz did not reroute) for every watched base that got some; the
    watches end."""
    with _lock:
        watches = list(_watches.values())
        _watches.clear()
    found = []
    for w in watches:
        if w.start is None:
            continue
        now = _reading(w.engine, w.base, w.kwargs)
        if now is not None and now > w.start:
            found.append((w.family, w.base, now - w.start))
    return found


def warning(family: str, base: str, count: int) -> str:
    return (
        f"dagz: warning: {family}: the base database {base!r} received {count} session(s) "
        "while dagz rerouted this run's connects to it: something dagz does not see connected "
        "there (a statically linked client, a driver dagz does not hook, a child started "
        "without the preload, or a connect inside bypass()), and shared it between workers"
    )
