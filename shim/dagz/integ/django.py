"""pytest-django under dagz: migrate once per run, clone per worker, keep the copies by fingerprint.

Registered by dagz's plugin whenever pytest-django and dagz are both active. It wraps Django's
``BaseDatabaseCreation.create_test_db`` (what pytest-django's ``django_db_setup`` reaches through
``django.test.utils.setup_databases``, also from a project's own ``django_db_setup``):

* for a PostgreSQL or MySQL/MariaDB alias, the test database pytest-django names per worker
  (``test_<NAME>_gwN`` or ``TEST["NAME"]`` + ``_gwN``) becomes a dagz copy
  (`dagz.engines.warm.provision`: ``CREATE DATABASE … TEMPLATE``, MariaDB's SQL clone) of a
  template that Django's own ``create_test_db`` migrated once per run (`dagz._django_build`);
* template and copies are kept across runs while the migration files (and the template's
  fingerprint) do not change: a second run migrates nothing and clones nothing;
  ``--create-db`` / ``--dagz-fresh`` rebuild both; ``--reuse-db`` keeps its meaning and is
  checked the same way (an edited migration rebuilds);
* those names are never rerouted again (``…_gw0_jw00``), with or without a ``PG_CONFIG`` /
  ``MYSQL_CONFIG`` conftest (`DbConfig.kept_names`), also not in children of a test (the shim's
  policy leaves every ``…_gwN`` name alone);
* ``MIRROR``, ``DEPENDENCIES``, ``serialized_rollback`` and other backends stay Django's.

The copies and templates stay on the server after the run, each with a dagz stamp: ``dagz db
list`` shows them, ``dagz db drop`` drops them (`dagz._django_build.django_owned`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from dagz import _django_build as build
from dagz import envvars
from dagz._state import log
from dagz.config import CONFIGS, MYSQL_CONFIG, PG_CONFIG
from dagz.engines import for_engine
from dagz.engines.warm import fresh_requested

PLUGIN_NAME = "dagz-django"
_OUTPUT_KEY = "dagz_django"
_FAMILY = {"pg": PG_CONFIG, "mysql": MYSQL_CONFIG}


def register(config: pytest.Config) -> None:
    """Registers the integration for this run (dagz's pytest_configure, pytest-django loaded)."""
    if config.pluginmanager.get_plugin(PLUGIN_NAME) is None:
        config.pluginmanager.register(DjangoIntegration(config), PLUGIN_NAME)


class DjangoIntegration:
    """The plugin object: patches Django's test database creation for the session."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.records: list[dict[str, Any]] = []
        self._saved: tuple[Any, Any] | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if "django" not in sys.modules or self._saved is not None:
            return
        from django.db.backends.base.creation import BaseDatabaseCreation as Creation

        self._saved = (Creation.create_test_db, Creation.destroy_test_db)
        Creation.create_test_db = _create_test_db(self, self._saved[0])  # type: ignore[method-assign]
        Creation.destroy_test_db = _destroy_test_db(self._saved[1])  # type: ignore[method-assign]

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._saved is None:
            return
        from django.db.backends.base.creation import BaseDatabaseCreation as Creation

        Creation.create_test_db, Creation.destroy_test_db = self._saved  # type: ignore[method-assign]
        self._saved = None

    # -- report --------------------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        aliases = _aliases()
        if aliases is None:
            return []
        managed = [f"{a} ({v})" for a, v in aliases if v in build.VENDORS]
        if not managed:
            return ["dagz django: no PostgreSQL/MySQL alias: Django creates its test databases"]
        return [
            "dagz django: test databases migrated once per run into a template, cloned per "
            f"worker, kept across runs by migration hash and fingerprint: {', '.join(managed)}"
        ]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[_OUTPUT_KEY] = json.dumps(self.records)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        out = getattr(node, "workeroutput", None) or {}
        self.records += json.loads(out.get(_OUTPUT_KEY, "[]"))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput") or not self.records:
            return
        terminalreporter.section("dagz django")
        for line in build.summarize(self.records):
            terminalreporter.write_line(line)


def _aliases() -> list[tuple[str, str]] | None:
    """(alias, vendor) of every configured database, None when Django is not configured."""
    if "django" not in sys.modules:
        return None
    from django.conf import settings

    if not settings.configured:
        return None
    engines = {"postgresql": "postgresql", "mysql": "mysql"}
    out = []
    for alias, sd in settings.DATABASES.items():
        engine = str(sd.get("ENGINE", ""))
        vendor = next((v for k, v in engines.items() if engine.endswith(f".{k}")), engine)
        out.append((alias, vendor))
    return out


# --------------------------------------------------------------------------------------------
# Django's creation, wrapped


def _create_test_db(plugin: DjangoIntegration, original: Callable[..., str]) -> Callable[..., str]:
    def create_test_db(
        self: Any,
        verbosity: int = 1,
        autoclobber: bool = False,
        serialize: bool = True,
        keepdb: bool = False,
    ) -> str:
        vendor = self.connection.vendor
        if vendor not in build.VENDORS:
            return original(self, verbosity, autoclobber, serialize, keepdb)
        fresh = fresh_requested() or bool(plugin.config.getoption("create_db", False))
        record = _provide(self, original, vendor, verbosity, keepdb, fresh)
        plugin.records.append(record)
        return str(record["target"])

    return create_test_db


def _destroy_test_db(original: Callable[..., None]) -> Callable[..., None]:
    def destroy_test_db(
        self: Any,
        old_database_name: str | None = None,
        verbosity: int = 1,
        keepdb: bool = False,
        suffix: str | None = None,
    ) -> None:
        name = self.connection.settings_dict.get("NAME")
        if suffix is None and name in _MANAGED:
            keepdb = True  # dagz keeps its copies for the next run (checked by fingerprint)
        original(self, old_database_name, verbosity, keepdb, suffix)

    return destroy_test_db


#: Test databases this process made as dagz copies (kept at teardown).
_MANAGED: set[str] = set()


def _provide(
    creation: Any,
    original: Callable[..., str],
    vendor: str,
    verbosity: int,
    keepdb: bool,
    fresh: bool,
) -> dict[str, Any]:
    """Makes the alias's test database a copy of the run's template; returns the record."""
    from django.conf import settings
    from django.core.management import call_command

    conn = creation.connection
    alias = conn.alias
    kind, max_len = build.VENDORS[vendor]
    sd = conn.settings_dict
    worker = os.environ.get(envvars.XDIST_WORKER, "")
    target = creation._get_test_db_name()
    template = build.template_name(target, worker, max_len)
    base = str(sd.get("NAME") or target)
    family = _FAMILY[kind]
    family.kept_names.update((target, template))  # children: the shim's policy keeps `…_gwN`
    kw = build.connect_kwargs(vendor, sd)
    graph = build.graph_hash(sd.get("TEST") or {})

    def migrate(created: Callable[[], None]) -> int:
        return _build_template(creation, original, template, verbosity, created)

    result = build.ensure_template(
        kind=kind, template=template, base=base, graph=graph, fresh=fresh, kw=kw,
        build=migrate, worker=worker,
    )  # fmt: skip
    conn.close()
    started = time.monotonic()
    _clear_foreign(creation, kind, target, kw, verbosity)
    outcome = for_engine(kind).provision(template, target, fresh=fresh, **kw)
    copy_seconds = round(time.monotonic() - started, 2)
    _MANAGED.add(target)
    log(f"django: {alias}: {target} {outcome.describe()} from {template} ({copy_seconds} s)")
    settings.DATABASES[alias]["NAME"] = target
    sd["NAME"] = target
    if verbosity >= 1:
        creation.log(f"dagz: {alias}: {target} {outcome.action} from template {template}")
    call_command("createcachetable", database=alias)
    conn.ensure_connection()
    return {
        "alias": alias,
        "vendor": vendor,
        "template": template,
        "template_action": result.action,
        "reason": result.reason,
        "migrations": result.migrations,
        "seconds": result.seconds,
        "target": target,
        "copy": "kept" if outcome.action == "kept" else "cloned",
        "copy_seconds": copy_seconds,
        "worker": worker,
        "keepdb": keepdb,
    }


def _build_template(
    creation: Any,
    original: Callable[..., str],
    template: str,
    verbosity: int,
    created: Callable[[], None],
) -> int:
    """Django's own creation and migrations, into `template`; the number of migrations."""
    from django.conf import settings

    conn = creation.connection
    sd = conn.settings_dict
    test = sd.setdefault("TEST", {})
    saved_test, saved_name = test.get("NAME"), sd.get("NAME")
    test["NAME"] = template
    try:
        creation._create_test_db(verbosity, True, False)
        created()
        with build.foreign_keys_in_place(conn):
            original(creation, verbosity, True, False, True)
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM django_migrations")
            row = cur.fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()
        test["NAME"] = saved_test
        sd["NAME"] = saved_name
        settings.DATABASES[conn.alias]["NAME"] = saved_name


def _clear_foreign(creation: Any, kind: str, target: str, kw: dict[str, object], v: int) -> None:
    """A test database left by a run without dagz (no dagz stamp) is Django's to replace, as
    pytest-django's non-interactive creation would: Django drops it, dagz then clones."""
    exists, comment = build.read_comment(kind, target, kw)
    if exists and build.warm.parse_stamp(comment) is None:
        creation._destroy_test_db(target, v)


__all__ = ["CONFIGS", "DjangoIntegration", "register"]
