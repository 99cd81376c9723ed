"""One database server of the leases: its kept connection, the lease locks on it, and its
cluster-wide objects (roles, prepared transactions / users), listed only when a one-row
signature changed."""

import hashlib
from typing import TYPE_CHECKING, Any

from dagz._state import log
from dagz.errors import DagzError

if TYPE_CHECKING:
    pass


def pg_key(name: str) -> int:
    """The advisory-lock key (bigint) of the lease on worker database `name`."""
    digest = hashlib.sha256(f"dagz worker {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def mysql_lock_name(name: str) -> str:
    """The ``GET_LOCK`` name of the lease on worker database `name` (64 characters at most)."""
    text = f"dagz:worker:{name}"
    if len(text) <= 64:
        return text
    return "dagz:worker:" + hashlib.sha256(name.encode()).hexdigest()[:40]


def _engine_name(engine: int | str) -> str:
    from dagz.engines import for_engine

    return for_engine(engine).NAME


def _server_label(kwargs: dict[str, Any]) -> str:
    host = kwargs.get("host") or kwargs.get("unix_socket") or "localhost"
    port = kwargs.get("port")
    return f"{host}:{port}" if port else str(host)


def _server_id(engine: str, kwargs: dict[str, Any]) -> str:
    parts = sorted((k, str(v)) for k, v in kwargs.items() if k not in ("password", "passwd"))
    return f"{engine} {parts}"


# --------------------------------------------------------------------------------------------
# one server


class _Server:
    """One connection to a server that holds this process's leases on it."""

    def __init__(self, engine: str, kwargs: dict[str, Any]) -> None:
        self.engine = engine
        self.kwargs = dict(kwargs)
        self.label = _server_label(self.kwargs)
        self.conn: Any = None
        self.held: set[str] = set()
        #: The cluster-wide objects now (kind and name → None), their signature, and what
        #: was there when the lease was taken.
        self.signature: object = None
        self.objects: set[str] = set()
        self.start: set[str] | None = None
        self.snapshots = True

    def _connect(self) -> Any:
        from dagz.engines import for_engine

        engine = for_engine(self.engine)
        if self.engine == "mysql":
            return engine.connect(None, **self.kwargs)
        last: Exception | None = None
        for db in ("postgres", "template1"):
            try:
                return engine.connect(db, **self.kwargs)
            except Exception as exc:
                last = exc
        assert last is not None
        raise last

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        if self.conn is None:
            try:
                self.conn = self._connect()
            except Exception as exc:
                from dagz.engines.base import redact

                raise DagzError(
                    f"dagz: cannot take worker leases on {self.engine} server {self.label}: "
                    + redact(" ".join(str(exc).split()), self.kwargs)
                ) from exc
        cur = self.conn.cursor()
        try:
            cur.execute(sql, params or None)
            return list(cur.fetchall()) if cur.description else []
        finally:
            cur.close()

    def try_take(self, name: str) -> bool:
        if name in self.held:
            return True
        if self.engine == "postgres":
            rows = self._query("SELECT pg_try_advisory_lock(%s)", (pg_key(name),))
        else:
            rows = self._query("SELECT GET_LOCK(%s, 0)", (mysql_lock_name(name),))
        if rows and rows[0][0] in (True, 1):
            self.held.add(name)
            return True
        return False

    def give_back(self, name: str) -> None:
        if name not in self.held:
            return
        self.held.discard(name)
        if self.engine == "postgres":
            self._query("SELECT pg_advisory_unlock(%s)", (pg_key(name),))
        else:
            self._query("SELECT RELEASE_LOCK(%s)", (mysql_lock_name(name),))

    def close(self) -> None:
        self.held.clear()
        if self.conn is not None:
            from dagz.engines.base import close_quietly

            close_quietly(self.conn)
            self.conn = None

    # -- cluster-wide objects -----------------------------------------------------------------

    def _signature(self) -> object:
        if self.engine == "postgres":
            rows = self._query(
                "SELECT (SELECT count(*)::text || ':' || coalesce(max(oid::int8), 0)::text"
                " FROM pg_roles) || '/' || (SELECT count(*)::text || ':' ||"
                " coalesce(max(prepared)::text, '') FROM pg_prepared_xacts)"
            )
        else:
            rows = self._query(
                "SELECT count(*), coalesce(sum(crc32(concat(User, '@', Host))), 0) FROM mysql.user"
            )
        return tuple(rows[0]) if rows else None

    def _list(self) -> set[str]:
        if self.engine == "postgres":
            roles = self._query("SELECT rolname FROM pg_roles")
            xacts = self._query("SELECT gid, database FROM pg_prepared_xacts")
            return {f"role '{r[0]}'" for r in roles} | {
                f"prepared transaction '{g}' in {d}" for g, d in xacts
            }
        users = self._query("SELECT User, Host FROM mysql.user")
        return {f"user '{_text(u)}'@'{_text(h)}'" for u, h in users}

    def refresh(self) -> set[str]:
        """What appeared since the last look (the objects are listed only when the one-row
        signature changed)."""
        if not self.snapshots:
            return set()
        try:
            signature = self._signature()
            if self.start is not None and signature == self.signature:
                return set()
            objects = self._list()
        except DagzError:
            raise
        except Exception as exc:
            self.snapshots = False
            log(
                f"{self.engine} server {self.label}: cluster-wide objects are not checked "
                f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
            )
            return set()
        appeared = objects - self.objects
        self.signature, self.objects = signature, objects
        if self.start is None:
            self.start = set(objects)
            return set()
        return appeared


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
