"""Warm start: keep per-worker databases across runs while their base did not change.

`create_worker_init` provisions every per-worker database with `provision`, the lifecycle below,
written once over the primitives each engine gives (`dagz.engines.base.WarmSession`): the
**stamp** that marks a finished worker database, the decision *keep or rebuild*, the bounded
rebuild loop, the run cache that lets one worker read the base for all, and the wording of the
dagz log.

The stamp is the database's own comment (PostgreSQL ``COMMENT ON DATABASE``, read from any
database with ``shobj_description``; MariaDB ``ALTER DATABASE … COMMENT``, read from
``information_schema.SCHEMATA.SCHEMA_COMMENT``): user tables, `truncate` and the tests never touch
it, and a database copied from a template does not inherit it. A worker database gets the
building stamp when it is created and its final stamp last, after the copy is complete and its
fingerprint was taken::

    dagz:v1 base=myapp fp=0cc175b9c0f1b6a831c399e269772661 created=2025-01-31T12:00:00Z
    dagz:v1 base=myapp building since=2025-01-31T12:00:00Z

A missing, building or unparsable stamp means "half-built": the database is rebuilt. ``v1`` is
also the version of the fingerprint's definition: changing what the fingerprint covers must bump
it, so that every existing worker database is rebuilt once.

The **fingerprint** has two parts, both computed on the server:

* the *schema* part: the catalog (one query per database: tables, columns, types, defaults,
  constraints, indexes, views, triggers, routines, sequences, extensions…), plus the rows of the
  migration bookkeeping tables (``alembic_version``, ``django_migrations``,
  ``schema_migrations``);
* the *data* part: an md5 of the rows of every other table that holds rows (the seed data).

The stamp records the full fingerprint of the copy (taken of the finished copy itself, so it
describes exactly what the worker database holds). On the next run the base's full fingerprint
must equal it — a new column, index or default, a new migration row or a new seed row all
rebuild — and the kept worker database's own *schema* part must still equal the base's (a test
that altered the worker's schema, e.g. by running a migration backwards, makes it "drifted"; its
data part is of course different: the tests wrote rows). A kept worker database then gets its
rows reset to the base's (every table that holds rows is emptied, every table that holds rows in
the base is copied again, sequences/auto-increment counters set to the base's values), so that
it holds exactly what a fresh copy would hold; then the user's ``prepare`` runs as usual.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote, unquote

from dagz import envvars
from dagz.engines.base import (
    CHANGED,
    DRIFTED,
    FORCED,
    INCOMPLETE,
    KEEP_FAILED,
    MISSING,
    NO_BASE,
    UNSUPPORTED,
    BaseView,
    Engine,
    Kept,
    Outcome,
    Owned,
    Stamp,
    WarmSession,
    redact,
)
from dagz.engines.slots import provisioning_slot
from dagz.errors import EngineError
from dagz.lease import refuse_if_in_use

__all__ = [
    "CHANGED",
    "DRIFTED",
    "FORCED",
    "FRESH_ENV",
    "INCOMPLETE",
    "KEEP_FAILED",
    "MISSING",
    "NO_BASE",
    "REBUILD_ATTEMPTS",
    "RUN_DIR_ENV",
    "STAMP_PREFIX",
    "UNSUPPORTED",
    "Fingerprinted",
    "Kept",
    "Outcome",
    "Owned",
    "Stamp",
    "building_text",
    "combine",
    "decide",
    "engine_provision",
    "fresh_requested",
    "owned_from_rows",
    "parse_stamp",
    "provision",
    "read_once",
    "rebuild_loop",
    "run_cache",
    "stamp_text",
    "worker_shaped",
]

#: `datetime.UTC` is Python 3.11+; the package supports 3.10.
UTC = timezone.utc  # noqa: UP017

#: Prefix of every dagz stamp; the version covers the stamp format and the fingerprint query.
STAMP_PREFIX = "dagz:v1"

#: ``DAGZ_FRESH=1`` (set by ``--dagz-fresh``) rebuilds every worker database.
FRESH_ENV = envvars.FRESH

#: The plugin's per-run directory (set by the controller when a run has several workers).
RUN_DIR_ENV = envvars.RUN_DIR

#: Clones of a base that keeps changing while it is being copied, before giving up waiting.
REBUILD_ATTEMPTS = 3

_STAMP_RE = re.compile(
    r"^dagz:v1 base=(?P<base>\S+) "
    r"(?:fp=(?P<fp>[0-9a-f]{32}|-) created=(?P<created>\S+)(?P<extra>(?: [a-z]+=\S+)*)"
    r"|building since=(?P<since>\S+))$"
)
_EXTRA_RE = re.compile(r" ([a-z]+)=(\S+)")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# --------------------------------------------------------------------------------------------
# stamps and fingerprints


def _now() -> str:
    return datetime.now(UTC).strftime(_TIME_FORMAT)


def _time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def stamp_text(base: str, fingerprint: str, created: datetime | None = None, **extra: str) -> str:
    """The final stamp of a worker database copied from `base`, whose copy has `fingerprint`,
    made at `created` (default: now); `extra` values must be free of spaces."""
    words = "".join(f" {k}={v}" for k, v in extra.items())
    when = _now() if created is None else created.strftime(_TIME_FORMAT)
    return f"{STAMP_PREFIX} base={quote(base, safe='')} fp={fingerprint} created={when}{words}"


def building_text(base: str) -> str:
    """The stamp of a worker database that is being built."""
    return f"{STAMP_PREFIX} base={quote(base, safe='')} building since={_now()}"


def parse_stamp(text: str | None) -> Stamp | None:
    """The stamp in a database comment, or None when the comment is not a dagz stamp."""
    if not text:
        return None
    m = _STAMP_RE.match(text.strip())
    if m is None:
        return None
    base = unquote(m["base"])
    if m["since"] is not None:
        return Stamp(base, None, _time(m["since"]))
    extra = dict(_EXTRA_RE.findall(m["extra"] or ""))
    return Stamp(base, m["fp"], _time(m["created"]), extra)


def combine(first: str, parts: Mapping[str, str | None]) -> str:
    """md5 of `first` and of the named md5s in `parts` (None: an empty table), in name order.

    The schema part is ``combine(catalog md5, {bookkeeping table: md5 of its rows})``; the full
    fingerprint is ``combine(schema part, {table holding rows: md5 of its rows})``.
    """
    h = hashlib.md5(usedforsecurity=False)
    h.update(first.encode())
    for name in sorted(parts):
        h.update(f"\n{name}={parts[name] or ''}".encode())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# decisions


class Fingerprinted:
    """Mixin of what was read of a database: its fingerprint from `catalog` (the md5 of its
    catalog), `bookkeeping` (the md5 of the rows of each bookkeeping table) and `hashes` (the
    md5 of the rows of each other table holding rows, when they were read)."""

    catalog: str
    bookkeeping: dict[str, str | None]
    hashes: dict[str, str]

    @property
    def schema_fp(self) -> str:
        return combine(self.catalog, self.bookkeeping)

    @property
    def fingerprint(self) -> str:
        """The full fingerprint (schema and data)."""
        return combine(self.schema_fp, dict(self.hashes))


def engine_provision(package: str) -> Callable[..., Outcome]:
    """The module-level `provision` of the engine package named `package`."""

    def provision_(
        base: str,
        target: str,
        *,
        fresh: bool = False,
        empty_if_missing: bool = True,
        **connect_kwargs: object,
    ) -> Outcome:
        """Makes `target` a copy of `base`, keeping the one from the last run when it still is
        one (`dagz.engines.warm.provision`)."""
        engine = cast(Engine, sys.modules[package])
        return provision(
            engine,
            base,
            target,
            fresh=fresh,
            connect_kwargs=connect_kwargs,
            empty_if_missing=empty_if_missing,
        )

    provision_.__name__ = provision_.__qualname__ = "provision"
    provision_.__module__ = package
    return provision_


def fresh_requested() -> bool:
    return os.environ.get(FRESH_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def decide(
    *,
    base: str,
    exists: bool,
    comment: str | None,
    base_fp: str,
    fresh: bool,
    base_schema_fp: str | None = None,
    live_schema_fp: str | None = None,
) -> str | None:
    """Why the worker database must be rebuilt, or None to keep it.

    `comment` is its current comment, `base_fp` the base's full fingerprint now; `live_schema_fp`
    the schema part of the worker database's own fingerprint now and `base_schema_fp` the
    base's (None: not taken yet; then only the stamp is compared).
    """
    if not exists:
        return MISSING
    if fresh:
        return FORCED
    stamp = parse_stamp(comment)
    if stamp is None or not stamp.complete:
        return INCOMPLETE
    if stamp.base != base or stamp.fingerprint != base_fp:
        return CHANGED
    if live_schema_fp is not None and live_schema_fp != base_schema_fp:
        return DRIFTED
    return None


def rebuild_loop(
    base_fp: str,
    clone: Callable[[], None],
    copy_fp: Callable[[], str],
    base_fp_now: Callable[[], str],
) -> tuple[str, str]:
    """Clones until the copy's fingerprint matches the base's; returns (the copy's fingerprint,
    a note for the log or "").

    The recorded fingerprint is always the copy's own (`copy_fp`, taken of the finished copy),
    never the base's: it describes exactly what the worker database holds. When it differs from
    the base's fingerprint taken before the clone, the base is fingerprinted again: the same as
    the copy → the base changed before the clone and the copy has the new state (done); the same
    as before → the clone does not reproduce something the fingerprint covers (keep the copy, it
    is rebuilt on every run; say so); else the base changed during the clone → clone again, at
    most `REBUILD_ATTEMPTS` times.
    """
    fingerprint = ""
    for _ in range(REBUILD_ATTEMPTS):
        clone()
        fingerprint = copy_fp()
        if fingerprint == base_fp:
            return fingerprint, ""
        now = base_fp_now()
        if now == fingerprint:
            return fingerprint, ""
        if now == base_fp:
            return fingerprint, (
                "the copy's fingerprint differs from its base's although the base did not"
                " change (the clone does not reproduce some object): it is rebuilt on every run"
            )
        base_fp = now
    return fingerprint, (
        f"the base changed during each of {REBUILD_ATTEMPTS} clones: the last copy is used"
        " and rebuilt on the next run"
    )


# --------------------------------------------------------------------------------------------
# the run cache


@contextmanager
def run_cache(key: str) -> Iterator[Path | None]:
    """A directory shared by the workers of this run for `key` (an engine, server and base),
    held under an exclusive lock while the caller is inside: the first worker reads the base
    and leaves what it read there, the others find it. None outside a multi-worker run.

    All workers of a run then see the same snapshot of the base (the one the first took),
    and the base gets one reading connection instead of one per worker (sessions connected to
    a PostgreSQL template make concurrent clones of it wait). The directory is the run's own
    (the controller makes a new one per run), so nothing outlives the run.
    """
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir or not Path(run_dir).is_dir():
        yield None
        return
    # xdist's id of this session too: a nested run inherits the outer run's directory.
    key = f"{key} {os.environ.get('PYTEST_XDIST_TESTRUNUID', '')}"
    digest = hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:16]
    path = Path(run_dir) / "warm" / digest
    path.mkdir(parents=True, exist_ok=True)
    with (path / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


T = TypeVar("T")


def read_once(
    key: str,
    read: Callable[[], T | None],
    dump: Callable[[T, Path], dict[str, Any] | None],
    load: Callable[[dict[str, Any], Path], T],
) -> T | None:
    """`read()`, done once per run when the run has several workers (`run_cache`): the first
    worker reads and leaves ``dump(value, dir)`` (JSON; files of its own in the directory) for
    the others, which get ``load(json, dir)``. `dump` returning None (too large to share):
    every worker reads for itself."""
    with run_cache(key) as cache:
        if cache is None:
            return read()
        marker = cache / "base.json"
        if marker.exists():
            saved = json.loads(marker.read_text())
            if saved.get("mode") == "cached":
                return None if saved["data"] is None else load(saved["data"], cache)
        else:
            value = read()
            data = None if value is None else dump(value, cache)
            if value is None or data is not None:
                marker.write_text(json.dumps({"mode": "cached", "data": data}))
            else:
                marker.write_text(json.dumps({"mode": "direct"}))
            return value
    return read()


def cache_key(engine: str, base: str, connect_kwargs: Mapping[str, object]) -> str:
    """The run cache's key of `base` on the server of `connect_kwargs` (password left out)."""
    server = sorted(
        (k, str(v)) for k, v in connect_kwargs.items() if k not in ("password", "passwd")
    )
    return f"{engine} {server} {base}"


def worker_shaped(name: str, base: str, engine: str) -> bool:
    """Whether `name` is the name of a worker copy of `base`: the policy's rendering
    (``DAGZ_POLICY``, default ``{db}_jw{worker:02}``) of `base` for some worker number, or that
    followed by ``_fN`` (the fresh name a run used when the usual one could not be rebuilt,
    `dagz.fresh`). A stamp alone does not make a database dagz's: a user's ``important`` with a
    stamp-like comment is not one."""
    fresh = re.fullmatch(r"(.+)_f[1-9]", name)
    if fresh is not None and _rendered(fresh[1], base, engine):
        return True
    return _rendered(name, base, engine)


def _rendered(name: str, base: str, engine: str) -> bool:
    numbers = sorted({int(d) for d in re.findall(r"\d+", name) if len(d) <= 6})
    try:
        from dagz import _shim

        code = _shim.ENGINE_POSTGRES if engine in ("pg", "postgres") else _shim.ENGINE_MYSQL
        return any(_shim.policy_render(code, base, n) == name for n in numbers)
    except Exception:  # no libdagz.so here (or a broken policy): the default template
        return re.fullmatch(rf"{re.escape(base)}_jw\d{{2,}}", name) is not None


def owned_from_rows(rows: Sequence[tuple[Any, ...]], engine: str) -> list[Owned]:
    """The databases among (name, comment, size) rows that are dagz's: the comment is a dagz
    stamp and the name is a worker name of the base the stamp names (`worker_shaped`), or one
    of dagz's Django test databases (a template or a ``…_gwN`` copy of it,
    `dagz._django_build.django_owned`)."""
    from dagz._django_build import django_owned

    owned = []
    for name, comment, size in rows:
        stamp = parse_stamp(None if comment is None else str(comment))
        if stamp is None:
            continue
        if worker_shaped(str(name), stamp.base, engine) or django_owned(str(name), stamp, engine):
            owned.append(Owned(str(name), stamp, None if size is None else int(size)))
    return owned


# --------------------------------------------------------------------------------------------
# the lifecycle


def provision(
    engine: Engine,
    base: str,
    target: str,
    *,
    fresh: bool,
    connect_kwargs: dict[str, object],
    empty_if_missing: bool = True,
) -> Outcome:
    """Makes `target` a copy of `base` — keeping the one from the last run when it still is one.

    Keep when `target` exists with a final stamp whose fingerprint is the base's current one
    (schema, bookkeeping rows, seed rows), its own schema fingerprint is the base's, and `fresh`
    is false: then only its rows and counters are reset to the base's (`WarmSession.keep`).
    Otherwise (or when the keep fails) drop it, clone the base (with the building stamp),
    fingerprint the copy and stamp it with that fingerprint (the copy's, so it describes exactly
    what the worker database holds), last (`rebuild_loop`). A missing base gives an empty
    `target` (stamped, fingerprint ``-``) with `empty_if_missing`, else the outcome "missing"
    and nothing made. In a run with several workers the base is read once
    (`read_once`). Servers where warm start is impossible always clone. The whole of it holds
    one of the server's provisioning slots (`dagz.engines.slots`), taken before the base is
    read: at most that many provisionings run at once on one server.
    """
    what = f"provisioning {engine.LABEL} database {target!r} from {base!r} failed"
    if base == target:
        raise EngineError(f"dagz: {what}: source and target are the same database")
    try:
        refuse_if_in_use(engine.NAME, target, what, connect_kwargs)  # another live run's (lease)
    except EngineError:
        raise
    except Exception as exc:  # a driver's error may quote the dsn: redacted, on one line
        text = redact(" ".join(str(exc).split()), connect_kwargs)
        raise EngineError(f"dagz: {what}: {text}") from exc
    with (
        provisioning_slot(
            engine.NAME, lambda: _slot_connection(engine, base, target, connect_kwargs)
        ),
        engine.warm_session(base, target, what, connect_kwargs) as session,
    ):
        why = session.unsupported()
        if why:
            session.clone_building()
            return Outcome("rebuilt", UNSUPPORTED, "", why)
        exists, comment = session.read_worker(fresh)
        stamp = parse_stamp(comment)
        mine = stamp if stamp is not None and stamp.base == base else None
        source: BaseView | None = read_once(
            cache_key(engine.NAME, base, connect_kwargs),
            lambda: session.read_base(mine),
            session.dump_base,
            session.load_base,
        )
        if source is None:
            if not empty_if_missing:
                return Outcome("missing", MISSING, NO_BASE)
            session.release()
            session.make_empty(stamp_text(base, NO_BASE))
            return Outcome("empty", MISSING, NO_BASE)
        kept = _keep_or_reason(session, source, base, exists, comment, stamp, fresh)
        if kept.reason is None:
            return Outcome("kept", None, source.fingerprint, restored=kept.restored)
        session.release()
        return _rebuild(session, source.fingerprint, kept)


def _slot_connection(
    engine: Engine, base: str, target: str, connect_kwargs: dict[str, object]
) -> Any:
    """The connection that holds the provisioning slot: to no database (MySQL), or to a
    maintenance database that is neither the base (no session may be connected to the template
    of a ``CREATE DATABASE``) nor the target (PostgreSQL)."""
    if engine.NAME != "postgres":
        return engine.connect(None, **connect_kwargs)  # type: ignore[arg-type]
    db = next(d for d in ("postgres", "template1") if d not in (base, target))
    return engine.connect(db, **connect_kwargs)


def _keep_or_reason(
    session: WarmSession,
    source: BaseView,
    base: str,
    exists: bool,
    comment: str | None,
    stamp: Stamp | None,
    fresh: bool,
) -> Kept:
    """The keep done (reason None), or why the worker database must be rebuilt."""
    reason = decide(
        base=base,
        exists=exists,
        comment=comment,
        base_fp=source.fingerprint,
        fresh=fresh,
        base_schema_fp=source.schema_fp,
        live_schema_fp=session.live_schema_fp(source) if exists else None,
    )
    if reason is not None or stamp is None:
        return Kept(reason or INCOMPLETE)
    return session.keep(source, stamp)


def _rebuild(session: WarmSession, base_fp: str, why: Kept) -> Outcome:
    fingerprint, note = rebuild_loop(
        base_fp, session.clone_building, session.copy_fingerprint, session.base_fingerprint
    )
    session.stamp_final(fingerprint)
    detail = "; ".join(x for x in (why.detail, note) if x)
    return Outcome("rebuilt", why.reason, fingerprint, detail)
