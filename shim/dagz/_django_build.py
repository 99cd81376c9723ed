"""Django test databases built once per run (used by `dagz.integ.django`).

* `graph_hash`: what the migrations would build — Django's version, every installed app with the
  contents of its migration files (or of its models, for an app migrated by ``run_syncdb`` or
  under ``--nomigrations``), the routers' code and the alias's ``TEST`` settings.
* The **template**: a database named after the alias's test database (``test_myapp_dzt`` for
  ``test_myapp_gw3``), built by Django's own ``create_test_db`` and stamped (the database's
  comment, as `dagz.engines.warm` stamps worker copies) with its fingerprint and that hash::

      dagz:v1 base=myapp fp=<fingerprint> created=… django=<graph hash> migrations=42

  It is kept while the hash and its fingerprint hold, rebuilt otherwise (``--create-db``,
  ``--dagz-fresh``: always). dagz drops a template only when it carries a dagz stamp.
* `ensure_template`: the first worker of the run to take the run lock (``$DAGZ_RUN_DIR``,
  `dagz.engines.warm.run_cache`) decides and builds; the others find its answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagz._bypass import hard_bypass
from dagz.engines import for_engine, warm
from dagz.engines.base import close_quietly
from dagz.errors import EngineError

#: What a template's name adds to the test database's name (without the worker's ``_gwN``).
TEMPLATE_SUFFIX = "_dzt"
#: Bumped when what `graph_hash` covers changes (every template is then rebuilt once).
GRAPH_VERSION = "1"
#: Django's database vendors dagz builds and clones: (dagz engine name, identifier limit).
VENDORS = {"postgresql": ("pg", 63), "mysql": ("mysql", 64)}

#: ``TEST`` settings that change what a test database holds.
_TEST_KEYS = ("MIGRATE", "CHARSET", "COLLATION", "TEMPLATE", "CREATE_DB", "TBLSPACE")
#: libpq / MySQLdb options of ``OPTIONS`` that dagz's own connections use too.
_PG_OPTIONS = frozenset(
    {"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "connect_timeout", "passfile"}
    | {"service", "options", "target_session_attrs", "gssencmode", "sslcrl"}
)
_MYSQL_OPTIONS = frozenset(
    {"unix_socket", "ssl", "charset", "read_default_file", "connect_timeout"}
)


@dataclass(frozen=True)
class Template:
    """What `ensure_template` did: "built" (``reason``: why) or "kept"; ``migrations``: rows of
    ``django_migrations`` in it; ``by``: the worker that decided (``gw0``, or "" serially)."""

    action: str
    reason: str
    migrations: int
    seconds: float
    by: str


# --------------------------------------------------------------------------------------------
# the migration graph


def _hash_file(h: Any, path: Path) -> None:
    h.update(f"file {path.name} ".encode())
    h.update(hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")


def _package_files(module_name: str | None) -> list[Path]:
    """The ``*.py`` files of package `module_name` (Django loads its top-level modules)."""
    if not module_name:
        return []
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if not spec.submodule_search_locations:
        return [Path(spec.origin)] if spec.origin and spec.origin.endswith(".py") else []
    files: list[Path] = []
    for location in spec.submodule_search_locations:
        files += sorted(Path(location).glob("*.py"))
    return files


def _module_files(module: Any) -> list[Path]:
    """The source of a module, or every ``*.py`` below a package."""
    origin = getattr(module, "__file__", None)
    if not origin:
        return []
    path = Path(origin)
    if path.name == "__init__.py":
        return sorted(path.parent.rglob("*.py"))
    return [path] if path.suffix == ".py" else []


def graph_hash(test_settings: Mapping[str, object]) -> str:
    """The hash of what Django's migrate builds for an alias with these ``TEST`` settings."""
    import django
    from django.apps import apps
    from django.conf import settings
    from django.db.migrations.loader import MigrationLoader

    h = hashlib.sha256()
    h.update(f"dagz-django {GRAPH_VERSION} {django.get_version()}\n".encode())
    h.update(repr(sorted((k, repr(test_settings.get(k))) for k in _TEST_KEYS)).encode())
    for router in settings.DATABASE_ROUTERS:
        h.update(f"router {router!r}\n".encode())
        if isinstance(router, str):
            for path in _package_files(router.rsplit(".", 1)[0]):
                _hash_file(h, path)
    for app in apps.get_app_configs():
        module, _explicit = MigrationLoader.migrations_module(app.label)
        h.update(f"app {app.label} {app.name} {module}\n".encode())
        files = _package_files(module)
        for path in files or _module_files(app.models_module):
            _hash_file(h, path)
    return h.hexdigest()[:32]


# --------------------------------------------------------------------------------------------
# names and connections


def template_name(test_name: str, worker: str | None, max_len: int) -> str:
    """``test_myapp_dzt`` for ``test_myapp_gw3`` on worker ``gw3`` (a digest when too long)."""
    base = test_name
    if worker and test_name.endswith(f"_{worker}"):
        base = test_name[: -len(worker) - 1]
    name = base + TEMPLATE_SUFFIX
    if len(name.encode()) <= max_len:
        return name
    digest = hashlib.md5(base.encode(), usedforsecurity=False).hexdigest()[:8]
    head = base.encode()[: max_len - len(digest) - len(TEMPLATE_SUFFIX) - 1]
    return f"{head.decode('utf-8', 'ignore')}_{digest}{TEMPLATE_SUFFIX}"


def django_owned(name: str, stamp: warm.Stamp, engine: str) -> bool:
    """Whether a database with this name and dagz stamp is one of dagz's Django databases
    (`dagz db list/drop`): a **template** (``…_dzt``; its final stamp carries the migration
    hash, a half-built one the building stamp) or a worker **copy** ``<T>_gwN`` whose stamp
    names its template, the one `template_name` gives for that name."""
    if name.endswith(TEMPLATE_SUFFIX):
        return not stamp.complete or "django" in stamp.extra
    m = re.fullmatch(r"(.+)_(gw\d+)", name)
    if m is None or not stamp.base.endswith(TEMPLATE_SUFFIX):
        return False
    max_len = 63 if engine in ("pg", "postgres") else 64
    return template_name(name, m[2], max_len) == stamp.base


def connect_kwargs(vendor: str, sd: Mapping[str, Any]) -> dict[str, object]:
    """dagz's connect arguments for a Django ``DATABASES`` entry (server, user, password)."""
    options: Mapping[str, Any] = sd.get("OPTIONS") or {}
    kw: dict[str, object] = {}
    if vendor == "postgresql":
        for key, setting in (("host", "HOST"), ("port", "PORT"), ("user", "USER")):
            if sd.get(setting):
                kw[key] = str(sd[setting])
        kw.update({k: v for k, v in options.items() if k in _PG_OPTIONS})
    else:
        host = str(sd.get("HOST") or "")
        if host.startswith("/"):
            kw["unix_socket"] = host
        elif host:
            kw["host"] = host
        if sd.get("PORT"):
            kw["port"] = int(sd["PORT"])
        if sd.get("USER"):
            kw["user"] = str(sd["USER"])
        kw.update({k: v for k, v in options.items() if k in _MYSQL_OPTIONS})
    if sd.get("PASSWORD"):
        kw["password"] = str(sd["PASSWORD"])
    return kw


def read_comment(kind: str, db: str, kw: dict[str, object]) -> tuple[bool, str | None]:
    """(whether database `db` exists, its comment)."""
    what = f"reading the comment of database {db!r} failed"
    if kind == "pg":
        sql = "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s"
    else:
        sql = "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s"
    rows = _run(kind, kw, what, sql, (db,))
    if not rows:
        return False, None
    value = rows[0][0]
    return True, None if value is None or value == "" else str(value)


def write_comment(kind: str, db: str, text: str, kw: dict[str, object]) -> None:
    """Gives database `db` the comment `text` (its stamp)."""
    engine = for_engine(kind)
    if kind == "pg":
        from dagz.engines.postgres.connection import _literal

        sql = f"COMMENT ON DATABASE {engine.quote_ident(db)} IS {_literal(text)}"
        _run(kind, kw, f"stamping database {db!r} failed", sql, None)
        return
    sql = f"ALTER DATABASE {engine.quote_ident(db)} COMMENT = %s"
    _run(kind, kw, f"stamping database {db!r} failed", sql, (text,))


def _run(
    kind: str, kw: dict[str, object], what: str, sql: str, params: tuple[object, ...] | None
) -> list[tuple[Any, ...]]:
    """One statement on an admin connection (PostgreSQL: ``postgres``; MySQL: no database)."""
    engine = for_engine(kind)
    with hard_bypass():
        try:
            conn = engine.connect("postgres" if kind == "pg" else None, **kw)
        except Exception as exc:
            raise EngineError(f"dagz: {what}: {_line(exc, kw)}") from exc
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            rows = list(cur.fetchall()) if cur.description else []
            cur.close()
            return rows
        except Exception as exc:
            raise EngineError(f"dagz: {what}: {_line(exc, kw)}") from exc
        finally:
            close_quietly(conn)


def _line(exc: BaseException, kw: Mapping[str, object]) -> str:
    from dagz.engines.base import redact

    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(text, kw)


# --------------------------------------------------------------------------------------------
# the template


def ours(comment: str | None, base: str) -> bool:
    """Whether a database with this comment was made by dagz from `base`."""
    stamp = warm.parse_stamp(comment)
    return stamp is not None and stamp.base == base


def _why_rebuild(exists: bool, comment: str | None, graph: str, fresh: bool) -> str | None:
    stamp = warm.parse_stamp(comment)
    if not exists:
        return "missing"
    if fresh:
        return "forced"
    if stamp is None or not stamp.complete:
        return "incomplete"
    if stamp.extra.get("django") != graph:
        return "migrations changed"
    return None


def ensure_template(
    *,
    kind: str,
    template: str,
    base: str,
    graph: str,
    fresh: bool,
    kw: dict[str, object],
    build: Callable[[Callable[[], None]], int],
    worker: str,
) -> Template:
    """Keeps or builds `template` once per run. `build(created)` runs Django's creation and
    migrations into it (calling `created()` once the empty database exists) and returns the
    number of applied migrations."""
    server = sorted((k, str(v)) for k, v in kw.items() if k not in ("password", "passwd"))
    with warm.run_cache(f"django {kind} {server} {template} {graph} {fresh}") as cache:
        marker = None if cache is None else cache / "django-template.json"
        if marker is not None and marker.exists():
            return Template(**json.loads(marker.read_text()))
        result = _keep_or_build(kind, template, base, graph, fresh, kw, build, worker)
        if marker is not None:
            marker.write_text(json.dumps(dataclasses.asdict(result)))
        return result


def _keep_or_build(
    kind: str,
    template: str,
    base: str,
    graph: str,
    fresh: bool,
    kw: dict[str, object],
    build: Callable[[Callable[[], None]], int],
    worker: str,
) -> Template:
    engine = for_engine(kind)
    exists, comment = read_comment(kind, template, kw)
    if exists and not ours(comment, base):
        raise EngineError(
            f"dagz: database {template!r} exists and was not made by dagz for {base!r}: "
            "dagz builds the Django test template under that name; drop or rename it"
        )
    reason = _why_rebuild(exists, comment, graph, fresh)
    stamp = warm.parse_stamp(comment)
    if reason is None and stamp is not None:
        if engine.fingerprint(template, **kw) == stamp.fingerprint:
            migrations = int(stamp.extra.get("migrations", "0") or 0)
            return Template("kept", "", migrations, 0.0, worker)
        reason = "drifted"
    started = time.monotonic()
    if exists:
        engine.drop(template, **kw)
    migrations = build(lambda: write_comment(kind, template, warm.building_text(base), kw))
    fingerprint = engine.fingerprint(template, **kw)
    final = warm.stamp_text(base, fingerprint, django=graph, migrations=str(migrations))
    write_comment(kind, template, final, kw)
    return Template("built", reason or "", migrations, round(time.monotonic() - started, 2), worker)


# --------------------------------------------------------------------------------------------
# MariaDB: foreign keys added in place while the template is migrated

_QUOTED = r"`(?:[^`]|``)+`"
#: Django's ``sql_create_fk`` on MySQL (its deferred SQL after CreateModel, AlterField, …).
_ADD_FK_RE = re.compile(
    rf"ALTER TABLE (?P<table>{_QUOTED}) ADD CONSTRAINT {_QUOTED} FOREIGN KEY"
    rf" \((?P<column>{_QUOTED})\) REFERENCES (?P<to_table>{_QUOTED}) \((?P<to_column>{_QUOTED})\)"
)


@contextmanager
def foreign_keys_in_place(connection: Any) -> Iterator[None]:
    """While Django migrates a MySQL/MariaDB template on `connection`: each ``ALTER TABLE …
    ADD CONSTRAINT … FOREIGN KEY`` Django sends runs with ``foreign_key_checks = 0`` for that
    statement alone, so the server adds the key in place instead of copying the whole table
    (with checks on it must rebuild it: the costliest DDL of a migration, and far more so on a
    busy server). dagz first checks the rows itself: when a row of the table has a key without a
    parent row (or the check cannot run), the statement runs as Django sent it, with checks on,
    and the server fails it as it would have. Every other statement, data migrations included,
    runs with the session's own setting. Other backends: nothing changes."""
    if getattr(connection, "vendor", "") != "mysql":
        yield
        return
    with connection.execute_wrapper(_add_fk_in_place):
        yield


def _add_fk_in_place(
    execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    m = _ADD_FK_RE.fullmatch(sql.strip()) if isinstance(sql, str) and not many else None
    if m is None or params:
        return execute(sql, params, many, context)
    cursor = context["cursor"]
    table, column, to_table, to_column = m["table"], m["column"], m["to_table"], m["to_column"]
    try:  # one round trip: the session's setting, and whether a row lacks its parent
        cursor.execute(
            f"SELECT @@SESSION.foreign_key_checks, EXISTS (SELECT 1 FROM {table} AS c"
            f" WHERE c.{column} IS NOT NULL AND NOT EXISTS"
            f" (SELECT 1 FROM {to_table} AS p WHERE p.{to_column} = c.{column}))"
        )
        row = cursor.fetchone()
        clean = row is not None and int(row[0]) == 1 and int(row[1]) == 0
    except Exception:
        clean = False  # the server decides, with Django's own statement
    if not clean:
        return execute(sql, params, many, context)
    if getattr(context.get("connection"), "mysql_is_mariadb", False):
        # MariaDB: the setting for this one statement, restored by the server
        return execute(f"SET STATEMENT foreign_key_checks = 0 FOR {sql}", params, many, context)
    cursor.execute("SET SESSION foreign_key_checks = 0")
    try:
        return execute(sql, params, many, context)
    finally:
        cursor.execute("SET SESSION foreign_key_checks = 1")


def summarize(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per alias from the workers' records (see `dagz.integ.django`)."""
    by_alias: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_alias.setdefault(str(rec["alias"]), []).append(rec)
    lines = []
    for alias, recs in sorted(by_alias.items()):
        tpl = recs[0]["template"]
        built = next((r for r in recs if r["template_action"] == "built"), None)
        if built is not None:
            why = f"; {built['reason']}" if built["reason"] else ""
            head = (
                f"template {tpl} built ({built['migrations']} migrations, "
                f"{built['seconds']:.2f} s{why})"
            )
        else:
            head = f"template {tpl} kept ({recs[0]['migrations']} migrations, unchanged)"
        cloned = sorted(r["target"] for r in recs if r["copy"] != "kept")
        kept = sorted(r["target"] for r in recs if r["copy"] == "kept")
        tail = f"{len(cloned)} cloned" + (f" ({', '.join(cloned)})" if cloned else "")
        tail += f", {len(kept)} kept" + (f" ({', '.join(kept)})" if kept else "")
        lines.append(f"dagz django: {alias} ({recs[0]['vendor']}): {head}; copies: {tail}")
    return lines
