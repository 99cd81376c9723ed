"""Warm start: keep per-worker databases across runs while their base did not change (issue 7).

`create_worker_init` provisions every per-worker database through the engine modules
(`dagz._pg.provision`, `dagz._mysql.provision`); this module holds what both share: the **stamp**
that marks a finished worker database, the decision *keep or rebuild*, the bounded rebuild loop
and the wording of the dagz log.

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
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote

#: `datetime.UTC` is Python 3.11+; the package supports 3.10.
UTC = timezone.utc  # noqa: UP017

#: Prefix of every dagz stamp; the version covers the stamp format and the fingerprint query.
STAMP_PREFIX = "dagz:v1"

#: ``DAGZ_FRESH=1`` (set by ``--dagz-fresh``) rebuilds every worker database.
FRESH_ENV = "DAGZ_FRESH"

#: Clones of a base that keeps changing while it is being copied, before giving up waiting.
REBUILD_ATTEMPTS = 3

#: The fingerprint recorded for a worker database made empty because its base does not exist.
NO_BASE = "-"

#: Why a worker database is rebuilt.
MISSING = "missing"  # it does not exist
INCOMPLETE = "incomplete"  # no final stamp: half-built (killed run) or not made by dagz
FORCED = "forced"  # --dagz-fresh / DAGZ_FRESH=1
CHANGED = "changed"  # the base's fingerprint differs from the stamp (or changed during the run)
DRIFTED = "drifted"  # the worker's own live fingerprint differs from its stamp
UNSUPPORTED = "unsupported"  # warm start impossible here (the log line says why)
KEEP_FAILED = "keep failed"  # restoring the seed rows failed (the log line has the error)

_STAMP_RE = re.compile(
    r"^dagz:v1 base=(?P<base>\S+) "
    r"(?:fp=(?P<fp>[0-9a-f]{32}|-) created=(?P<created>\S+)(?P<extra>(?: [a-z]+=\S+)*)"
    r"|building since=(?P<since>\S+))$"
)
_EXTRA_RE = re.compile(r" ([a-z]+)=(\S+)")


@dataclass(frozen=True)
class Stamp:
    """A parsed stamp. `fingerprint` None: the database was still being built. `extra`: the
    engine's own ``key=value`` words after ``created=`` (PostgreSQL: the catalog part of the
    fingerprint and the change tokens of the base and of the copy, see `dagz._pg`)."""

    base: str
    fingerprint: str | None
    created: datetime | None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.fingerprint is not None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def stamp_text(base: str, fingerprint: str, created: datetime | None = None, **extra: str) -> str:
    """The final stamp of a worker database copied from `base`, whose copy has `fingerprint`,
    made at `created` (default: now); `extra` values must be free of spaces."""
    words = "".join(f" {k}={v}" for k, v in extra.items())
    when = _now() if created is None else created.strftime("%Y-%m-%dT%H:%M:%SZ")
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


@dataclass(frozen=True)
class Outcome:
    """What `provision` did with one worker database."""

    #: "kept", "rebuilt" or "empty" (the base does not exist: created empty)
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


#: The plugin's per-run directory (set by the controller when a run has several workers).
RUN_DIR_ENV = "DAGZ_RUN_DIR"


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
