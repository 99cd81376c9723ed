"""What every database engine of dagz provides, and the types the engines share.

An engine is a package (`dagz.engines.postgres`, `dagz.engines.mysql`) whose module-level
functions make the `Engine` protocol: connect, truncate, clone, drop, fingerprint, provision and
list owned databases. `provision` is the warm-start lifecycle of `dagz.engines.warm`, written once;
an engine gives it the primitives of one provisioning through `Engine.warm_session` (a
`WarmSession`).

Every connection an engine opens is made inside `dagz._bypass.hard_bypass()`, so the shim never
reroutes dagz's own admin/clone connections. Every failure is an `EngineError`: one line that
names the database and never holds a password.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dagz._bypass import hard_bypass
from dagz.errors import EngineError

#: Migration bookkeeping tables: never emptied, their sequences/counters never reset; their rows
#: are part of the schema part of a fingerprint.
KEEP_TABLES = frozenset({"alembic_version", "django_migrations", "schema_migrations"})

#: The fingerprint recorded for a worker database made empty because its base does not exist.
NO_BASE = "-"

#: Why a dagz statement (a `truncate` in `prepare`) timed out on a lock, and what to do: in a test
#: process the holder is almost always the test's own connection (a pool keeps them from test to
#: test, and `prepare` runs before a test's first statement on each of them).
LOCK_HINT = (
    "an open transaction holds a lock it needs — most likely on a connection of this test "
    "process that a pool keeps from test to test; commit, roll back or close that connection "
    "before the test ends"
)

#: Why a worker database is rebuilt.
MISSING = "missing"  # it does not exist
INCOMPLETE = "incomplete"  # no final stamp: half-built (killed run) or not made by dagz
FORCED = "forced"  # --dagz-fresh / DAGZ_FRESH=1
CHANGED = "changed"  # the base's fingerprint differs from the stamp (or changed during the run)
DRIFTED = "drifted"  # the worker's own live fingerprint differs from its stamp
UNSUPPORTED = "unsupported"  # warm start impossible here (the log line says why)
KEEP_FAILED = "keep failed"  # restoring the seed rows failed (the log line has the error)


# --------------------------------------------------------------------------------------------
# DB-API


class DbCursor(Protocol):
    """The part of a DB-API cursor the engines use (psycopg, psycopg2, MySQLdb, PyMySQL)."""

    @property
    def description(self) -> object: ...

    def execute(self, query: str, params: Sequence[object] | None = None, /) -> object: ...

    def fetchall(self) -> Sequence[tuple[Any, ...]]: ...

    def nextset(self) -> object: ...

    def close(self) -> None: ...


class DbConnection(Protocol):
    """The part of a DB-API connection the engines use."""

    def cursor(self) -> DbCursor: ...

    def close(self) -> None: ...


#: A ``key = value`` pair of a libpq conninfo string (value quoted or bare, backslash escapes).
_CONNINFO_PAIR = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*)"
)
_SECRET_KEYS = frozenset({"password", "passwd", "sslpassword"})


def _shim_redact(text: str) -> str | None:
    """The shim's redaction of `text` (`dagz._shim.redact`), None when libdagz.so cannot be
    loaded here (e.g. `dagz db` without a build)."""
    try:
        from dagz import _shim

        return _shim.redact(text)
    except Exception:
        return None


def _dsn_secrets(dsn: str) -> list[str]:
    """The parts of a ``dsn``/``conninfo`` string that may be secret: what the shim's
    redaction masks in it, and, for a conninfo that does not parse (the driver's error then
    quotes the offending part, e.g. ``missing "=" after "Sekr3tPW"``), every word from the
    first part that is not a ``key=value`` pair on."""
    secrets: list[str] = []
    masked = _shim_redact(dsn)
    if masked is not None and masked != dsn:
        pattern = "(.*?)".join(re.escape(piece) for piece in masked.split("***"))
        found = re.fullmatch(pattern, dsn, re.DOTALL)
        if found is not None:
            secrets += [g for g in found.groups() if g]
    if "://" in dsn:
        return secrets
    pos = 0
    while pos < len(dsn) and dsn[pos:].strip():
        pair = _CONNINFO_PAIR.match(dsn, pos)
        if pair is None or pair.end() == pos:
            break
        if pair[1].lower() in _SECRET_KEYS and pair[2]:
            secrets += [pair[2], pair[2].strip("'")]
        pos = pair.end()
    return secrets + [w for w in re.split(r"[\s='\\]+", dsn[pos:]) if w]


def redact(text: str, connect_kwargs: Mapping[str, object]) -> str:
    """`text` without the caller's secrets — the one redaction of the engines' messages: the
    password (``password``/``passwd``), the secret parts of a ``dsn``/``conninfo`` string
    (also one that does not parse), and whatever the shim's redaction (`dagz._shim.redact`,
    the one the shim's log uses) finds in `text` itself, all replaced by ``***``."""
    secrets = [str(connect_kwargs[k]) for k in ("password", "passwd") if connect_kwargs.get(k)]
    for key in ("dsn", "conninfo"):
        dsn = connect_kwargs.get(key)
        if isinstance(dsn, str) and dsn:
            secrets += _dsn_secrets(dsn)
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
        else:  # a short word: only where it stands alone
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    shown = _shim_redact(text)
    return text if shown is None else shown


def close_quietly(conn: Any) -> None:
    with contextlib.suppress(Exception):
        conn.close()


C = TypeVar("C")


@contextlib.contextmanager
def opened(
    open_: Callable[[], C], fail: Callable[[Exception], EngineError], *, keep: bool = False
) -> Iterator[C]:
    """A connection made by `open_` inside `hard_bypass`, closed at the end (with `keep`: only
    on error); a connect error other than an `EngineError` becomes ``fail(exc)``."""
    with hard_bypass():
        try:
            conn = open_()
        except EngineError:
            raise
        except Exception as exc:
            raise fail(exc) from exc
        try:
            yield conn
        except BaseException:
            close_quietly(conn)
            raise
        if not keep:
            close_quietly(conn)


def quoted(name: str, quote: str) -> str:
    """An identifier between `quote` characters (a `quote` inside doubled)."""
    if "\x00" in name:
        raise EngineError(f"dagz: identifier {name!r} contains a NUL byte")
    return quote + name.replace(quote, quote + quote) + quote


def dependency_order(
    names: Sequence[str], needs: Mapping[str, set[str]], *, break_cycles: bool = False
) -> list[str] | None:
    """`names` with every name after the names it `needs`, in layers (each layer in the order
    of `names`). A cycle: None, or with `break_cycles` its first name goes next."""
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(names):
        ready = [n for n in names if n not in done and needs.get(n, set()) <= done]
        if not ready:
            if not break_cycles:
                return None
            ready = [next(n for n in names if n not in done)]
        order += ready
        done.update(ready)
    return order


# --------------------------------------------------------------------------------------------
# warm start


@dataclass(frozen=True)
class Stamp:
    """A parsed stamp (see `dagz.engines.warm`). `fingerprint` None: the database was still
    being built. `extra`: the engine's own ``key=value`` words after ``created=`` (PostgreSQL:
    the catalog part of the fingerprint and the change tokens of the base and of the copy)."""

    base: str
    fingerprint: str | None
    created: datetime | None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.fingerprint is not None


@dataclass(frozen=True)
class Outcome:
    """What `provision` did with one worker database."""

    #: "kept", "rebuilt", "empty" (the base does not exist: created empty) or "missing" (the
    #: base does not exist and nothing was made: no `empty_if_missing`)
    action: str
    #: Why it was rebuilt (one of the reasons above), None when kept.
    reason: str | None
    #: The fingerprint recorded in its stamp (the copy's), or `NO_BASE`.
    fingerprint: str
    #: Extra words for the log (an error that made a keep fail, a rebuild loop's note).
    detail: str = ""
    #: Tables whose rows were restored from the base on a keep.
    restored: tuple[str, ...] = ()

    def describe(self) -> str:
        """``kept (fingerprint 0cc175b9c0f1)``, ``rebuilt (changed)``, ``created empty (…)``."""
        extra = f"; {self.detail}" if self.detail else ""
        if self.action == "kept":
            return f"kept (fingerprint {self.fingerprint[:12]}{extra})"
        if self.action == "empty":
            return f"created empty (base does not exist{extra})"
        return f"rebuilt ({self.reason}{extra}) with fingerprint {self.fingerprint[:12]}"


@dataclass(frozen=True)
class Kept:
    """What a keep did: `reason` None when the worker database was kept, else why it must be
    rebuilt instead (`detail`: words for the log)."""

    reason: str | None
    detail: str = ""
    restored: tuple[str, ...] = ()


@dataclass(frozen=True)
class Owned:
    """A database that carries a dagz stamp."""

    name: str
    stamp: Stamp
    size: int | None  # bytes (data and indexes), None when not readable


class BaseView(Protocol):
    """A base database as a provisioning read it."""

    @property
    def fingerprint(self) -> str: ...

    @property
    def schema_fp(self) -> str: ...


class WarmSession(Protocol):
    """The engine's primitives for provisioning one worker database `target` from `base`,
    driven by `dagz.engines.warm.provision` in this order: `unsupported`, `read_worker`,
    `read_base` (or `load_base` in a run that shares it; `dump_base` shares it),
    `live_schema_fp`, then `keep`, or `release` and `make_empty`, or `release` and the
    rebuild: `clone_building`, `copy_fingerprint` (and `base_fingerprint`), `stamp_final`."""

    def unsupported(self) -> str:
        """Why warm start cannot run on this server ("" when it can)."""
        ...

    def read_worker(self, fresh: bool) -> tuple[bool, str | None]:
        """(whether `target` exists, its comment)."""
        ...

    def read_base(self, stamp: Stamp | None) -> BaseView | None:
        """The base (None: it does not exist); `stamp`: the worker's, when made from it."""
        ...

    def dump_base(self, base: Any, cache: Path) -> dict[str, Any] | None:
        """`base` as JSON for the run's other workers (files may go to `cache`); None: too
        large to share."""
        ...

    def load_base(self, data: dict[str, Any], cache: Path) -> BaseView:
        """The base that the run's first worker dumped."""
        ...

    def live_schema_fp(self, base: Any) -> str | None:
        """The schema part of the existing worker database's own fingerprint now (None: the
        engine checks it in `keep`)."""
        ...

    def keep(self, base: Any, stamp: Stamp) -> Kept:
        """Makes the kept worker database hold exactly the base's rows."""
        ...

    def release(self) -> None:
        """Closes the connections to the worker database and to the base (before cloning)."""
        ...

    def make_empty(self, stamp: str) -> None:
        """Creates `target` empty with the comment `stamp` (the base does not exist)."""
        ...

    def clone_building(self) -> None:
        """Drops `target`, clones the base into it, marks it as being built."""
        ...

    def copy_fingerprint(self) -> str:
        """The full fingerprint of the copy just made."""
        ...

    def base_fingerprint(self) -> str:
        """The base's full fingerprint now."""
        ...

    def stamp_final(self, fingerprint: str) -> None:
        """Gives the finished copy its final stamp."""
        ...


class Engine(Protocol):
    """A database engine: the module-level API of its package (`dagz.engines.for_engine`)."""

    #: Short name ("postgres", "mysql") and the name in messages ("PostgreSQL", "MySQL").
    NAME: str
    LABEL: str

    def connect(self, db: str, /, **connect_kwargs: object) -> Any: ...

    def quote_ident(self, name: str) -> str: ...

    def truncate(self, db_name: str, **connect_kwargs: object) -> list[str]: ...

    def drop(self, db_name: str, **connect_kwargs: object) -> None: ...

    def clone(self, base: str, target: str, **connect_kwargs: object) -> str: ...

    def fingerprint(self, db_name: str, **connect_kwargs: object) -> str: ...

    def provision(
        self,
        base: str,
        target: str,
        *,
        fresh: bool = False,
        empty_if_missing: bool = True,
        **connect_kwargs: object,
    ) -> Outcome: ...

    def list_owned(self, **connect_kwargs: object) -> list[Owned]: ...

    def comment_of(self, db_name: str, **connect_kwargs: object) -> tuple[bool, str | None]: ...

    def warm_session(
        self, base: str, target: str, what: str, connect_kwargs: dict[str, object]
    ) -> AbstractContextManager[WarmSession]: ...
