"""Redis as a dagz engine: the database indexes dagz assigns to workers.

What dagz owns on a Redis server is a set of *indexes* (``SELECT n``), not databases with names.
Redis keeps no metadata per index where a stamp could live without the application seeing it
(a marker key would show in ``DBSIZE``/``KEYS``), so ownership is recorded on this machine, in
``$XDG_CACHE_HOME/dagz/redis-indexes.json`` (default ``~/.cache/dagz``): server address ->
index -> the worker and logical index it was assigned for. An index is claimed only when it is
empty or already recorded; dagz never flushes an index it did not record.

Admin connections are plain redis-py clients made inside `bypass()`, so dagz's hooks leave them
alone. Every failure is an `EngineError` without the password.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagz._bypass import bypass
from dagz.engines.base import Owned, Stamp, redact
from dagz.errors import EngineError

NAME = "redis"
DEFAULT_PORT = 6379
#: `databases` per server address, read once per process.
_DATABASES: dict[str, int] = {}


def address(connect_kwargs: dict[str, Any]) -> str:
    """``host:port`` or the unix socket path: the key of a server in caches and the registry."""
    path = connect_kwargs.get("unix_socket_path") or connect_kwargs.get("path")
    if path:
        return str(path)
    host = str(connect_kwargs.get("host") or "127.0.0.1")
    host = "127.0.0.1" if host == "localhost" else host
    return f"{host}:{connect_kwargs.get('port') or DEFAULT_PORT}"


def _client_kwargs(connect_kwargs: dict[str, Any], db: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"db": db, "socket_timeout": 10}
    path = connect_kwargs.get("unix_socket_path") or connect_kwargs.get("path")
    if path:
        out["unix_socket_path"] = path
    else:
        out["host"] = connect_kwargs.get("host") or "127.0.0.1"
        out["port"] = int(connect_kwargs.get("port") or DEFAULT_PORT)
    for key in ("username", "password", "ssl"):
        if connect_kwargs.get(key) is not None:
            out[key] = connect_kwargs[key]
    return out


#: dagz's own clients per (server, index), kept for the process (prepare runs once per test).
_CLIENTS: dict[tuple[str, int], Any] = {}


@contextlib.contextmanager
def admin(connect_kwargs: dict[str, Any], what: str, db: int = 0) -> Iterator[Any]:
    """A redis-py client of dagz's own (never rerouted: it is only used inside `bypass()`,
    where its pool connects too); failures become `EngineError`."""
    import redis

    key = (address(connect_kwargs), db)
    with bypass():
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = redis.Redis(**_client_kwargs(connect_kwargs, db))
        try:
            yield client
        except EngineError:
            raise
        except Exception as exc:
            _CLIENTS.pop(key, None)
            client.close()
            text = redact(f"{what}: {type(exc).__name__}: {exc}", connect_kwargs)
            raise EngineError(f"{text} (server {address(connect_kwargs)})") from exc


def databases(connect_kwargs: dict[str, Any]) -> int:
    """The server's `databases` setting (``CONFIG GET databases``; when CONFIG is not allowed,
    the first index ``SELECT`` refuses). Cached per server and process."""
    key = address(connect_kwargs)
    known = _DATABASES.get(key)
    if known is not None:
        return known
    with admin(connect_kwargs, "reading the Redis `databases` setting failed") as client:
        try:
            value = int(client.config_get("databases")["databases"])
        except Exception:
            value = _probe_databases(client)
    _DATABASES[key] = value
    return value


def _probe_databases(client: Any) -> int:
    import redis

    low, high = 1, 1 << 16  # SELECT 0 always works; find the first index SELECT refuses
    conn = client.connection_pool.get_connection()
    try:
        while low < high:
            mid = (low + high) // 2
            try:
                conn.send_command("SELECT", mid)
                conn.read_response()
                low = mid + 1
            except redis.ResponseError:
                high = mid
    finally:
        client.connection_pool.release(conn)
    return low


def keyspace(connect_kwargs: dict[str, Any]) -> dict[int, int]:
    """index -> number of keys, for the indexes that hold keys (``INFO keyspace``)."""
    with admin(connect_kwargs, "reading Redis INFO keyspace failed") as client:
        info = client.info("keyspace")
    return {int(k[2:]): int(v.get("keys", 0)) for k, v in info.items() if k.startswith("db")}


def flush(connect_kwargs: dict[str, Any], indexes: list[int]) -> None:
    """``FLUSHDB`` of each index, in one round trip (a script that selects each in turn)."""
    if not indexes:
        return
    if len(indexes) == 1:
        with admin(connect_kwargs, f"flushing Redis index {indexes[0]} failed", indexes[0]) as c:
            c.flushdb()
        return
    with admin(connect_kwargs, f"flushing Redis indexes {indexes} failed") as client:
        client.eval(FLUSH_SCRIPT, 0, *indexes)


#: FLUSHDB of each ARGV index; SELECT inside a script does not change the caller's index.
FLUSH_SCRIPT = (
    "for _, db in ipairs(ARGV) do redis.call('SELECT', db); redis.call('FLUSHDB') end "
    "return redis.status_reply('OK')"
)


# -- the registry ---------------------------------------------------------------------------------


def registry_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dagz" / "redis-indexes.json"


@contextlib.contextmanager
def _registry() -> Iterator[dict[str, dict[str, dict[str, Any]]]]:
    """The registry, read and written back under an exclusive file lock."""
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            data = {}
        before = json.dumps(data, sort_keys=True)
        yield data
        after = json.dumps(data, sort_keys=True)
        if after != before:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(after)
            tmp.replace(path)


def claim(connect_kwargs: dict[str, Any], index: int, worker: int, logical: str) -> bool:
    """Records `index` as dagz's for `worker`. True when it was recorded already (it may hold
    an earlier run's keys); refused when it holds keys dagz did not record."""
    key = address(connect_kwargs)
    with _registry() as data:
        entries = data.setdefault(key, {})
        known = str(index) in entries
        if not known:
            keys = keyspace(connect_kwargs).get(index, 0)
            if keys:
                raise EngineError(
                    f"Redis index {index} at {key} holds {keys} key(s) that dagz did not put "
                    f"there: refusing to use it as worker {worker}'s copy of index {logical}. "
                    f"Empty it yourself if it is scratch, or raise `databases` so the worker "
                    f"blocks move past it"
                )
        entries[str(index)] = {
            "worker": worker,
            "logical": logical,
            "claimed": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    return known


def owned(connect_kwargs: dict[str, Any]) -> dict[int, dict[str, Any]]:
    if not registry_path().exists():  # listing creates nothing
        return {}
    with _registry() as data:
        return {int(k): v for k, v in data.get(address(connect_kwargs), {}).items()}


def _release(connect_kwargs: dict[str, Any], index: int) -> None:
    with _registry() as data:
        entries = data.get(address(connect_kwargs), {})
        entries.pop(str(index), None)
        if not entries:
            data.pop(address(connect_kwargs), None)


# -- the Engine surface (dagz db list/drop, truncate) ----------------------------------------------


def _kwargs(connect_kwargs: dict[str, object]) -> dict[str, Any]:
    out = {k: v for k, v in connect_kwargs.items() if v is not None}
    if "user" in out and "username" not in out:
        out["username"] = out.pop("user")
    out.pop("user", None)
    return out


def list_owned(**connect_kwargs: object) -> list[Owned]:
    """The indexes recorded as dagz's on this server; `size` is the number of keys."""
    kwargs = _kwargs(connect_kwargs)
    entries = owned(kwargs)
    if not entries:
        return []
    keys = keyspace(kwargs)
    out = []
    for index, entry in sorted(entries.items()):
        created = None
        with contextlib.suppress(ValueError, TypeError):
            created = datetime.fromisoformat(str(entry.get("claimed")))
        stamp = Stamp(f"index {entry.get('logical')}", f"worker {entry.get('worker')}", created)
        out.append(Owned(str(index), stamp, keys.get(index, 0)))
    return out


def drop(db_name: str, **connect_kwargs: object) -> None:
    """FLUSHDB of a recorded index, then forgets it; an index dagz did not record is refused."""
    kwargs = _kwargs(connect_kwargs)
    index = _index(db_name)
    if index not in owned(kwargs):
        raise EngineError(
            f"Redis index {index} at {address(kwargs)} is not recorded as dagz's: not flushed"
        )
    flush(kwargs, [index])
    _release(kwargs, index)


def truncate(db_name: str, **connect_kwargs: object) -> list[str]:
    """FLUSHDB of one worker index; returns what was emptied (the index)."""
    kwargs = _kwargs(connect_kwargs)
    flush(kwargs, [_index(db_name)])
    return [db_name]


def _index(db_name: str) -> int:
    try:
        index = int(db_name)
    except (TypeError, ValueError):
        raise EngineError(f"{db_name!r} is not a Redis database index") from None
    if index < 0:
        raise EngineError(f"{db_name!r} is not a Redis database index")
    return index
