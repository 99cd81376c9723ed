"""pytest-django under dagz (issue 14): migrate once per run, clone per worker, keep by fingerprint.

Each test copies ``django_project/site`` (apps shop and ledger; aliases ``default``, ``other``
with its own ``TEST["NAME"]`` and ``replica``, a ``MIRROR``; a DAGZ-style conftest configuring
PG_CONFIG and MYSQL_CONFIG with the defaults) to its tmp dir, gives it a fresh ``dz_…`` database
name and runs ``pytest --dagz-workers 4`` on it in a subprocess. It judges from the inner run's
JUnit XML, from the events the project writes outside the databases (each ``RunPython`` migration
execution; where each alias's connection landed, as ``connection.settings_dict['NAME']`` and as
the server's ``current_database()`` / ``DATABASE()``) and from the servers' catalogs. Every
database of that name (``test_<name>…``, ``<name>…``) is dropped at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from psycopg import sql

from support import MY_HOST, MY_PORT, MY_USER, PG_HOST, PG_PORT, PG_USER, VENV_PYTHON, unique_name

SITE = Path(__file__).resolve().parent / "django_project" / "site"
WORKERS = 4
INNER_TIMEOUT_S = 400.0
_STRIPPED = ("DAGZ_", "PYTEST_", "PG", "PSYCOPG_", "DZ_", "LD_PRELOAD", "PYTHONPATH", "DJANGO_")

#: A migration added between runs (and its model field): the next run must rebuild.
NEW_MIGRATION = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0003_seed_products")]
    operations = [
        migrations.AddField("product", "note", models.CharField(max_length=50, null=True)),
    ]
"""


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


def server_databases(engine: str, name: str) -> list[str]:
    """Databases on `engine`'s server named ``<name>…`` or ``test_<name>…``."""
    patterns = (_like(name), _like(f"test_{name}"))
    if engine == "pg":
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
        ) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s OR datname LIKE %s",
                patterns,
            ).fetchall()
        return sorted(str(r[0]) for r in rows)
    my = pymysql.connect(host=MY_HOST, port=MY_PORT, user=MY_USER, password="", autocommit=True)
    try:
        with my.cursor() as cur:
            cur.execute(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
                " WHERE SCHEMA_NAME LIKE %s OR SCHEMA_NAME LIKE %s",
                patterns,
            )
            return sorted(str(r[0]) for r in cur.fetchall())
    finally:
        my.close()


def drop_databases(engine: str, name: str) -> None:
    for db in server_databases(engine, name):
        if engine == "pg":
            with psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
            ) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db))
                )
        else:
            my = pymysql.connect(host=MY_HOST, port=MY_PORT, user=MY_USER, password="")
            try:
                with my.cursor() as cur:
                    cur.execute("DROP DATABASE IF EXISTS `{}`".format(db.replace("`", "``")))
            finally:
                my.close()


def column_exists(engine: str, db: str, table: str, column: str) -> bool:
    query = (
        "SELECT count(*) FROM information_schema.columns"
        " WHERE table_catalog = %s AND table_name = %s AND column_name = %s"
    )
    if engine == "pg":
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=db, autocommit=True
        ) as conn:
            row = conn.execute(query, (db, table, column)).fetchone()
        return bool(row and row[0])
    my = pymysql.connect(host=MY_HOST, port=MY_PORT, user=MY_USER, password="")
    try:
        with my.cursor() as cur:
            cur.execute(query.replace("table_catalog", "table_schema"), (db, table, column))
            row = cur.fetchone()
            return bool(row and row[0])
    finally:
        my.close()


@dataclass
class Run:
    returncode: int
    output: str
    events: list[dict[str, Any]]
    outcomes: Counter[str]

    def describe(self) -> str:
        return f"exit {self.returncode}, outcomes {dict(self.outcomes)}\n{self.output[-6000:]}"

    def migrations(self) -> Counter[tuple[str, str, str]]:
        return Counter(
            (e["migration"], e["alias"], e["db"]) for e in self.events if e["event"] == "migration"
        )

    def landed(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "landed"]


@dataclass
class Project:
    engine: str
    name: str
    root: Path
    runs: int = 0

    def run(self, *args: str, conftest: bool = True) -> Run:
        self.runs += 1
        record = self.root.parent / f"events-{self.runs}.jsonl"
        junit = self.root.parent / f"junit-{self.runs}.xml"
        env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED)}
        env.update(
            DZ_DJ_ENGINE=self.engine,
            DZ_DJ_NAME=self.name,
            DZ_DJ_RECORD=str(record),
            DZ_DJ_CONFTEST="1" if conftest else "0",
        )
        cmd = [str(VENV_PYTHON), "-m", "pytest", "-p", "no:cacheprovider"]
        cmd += ["--dagz-workers", str(WORKERS), f"--junitxml={junit}", *args]
        proc = subprocess.run(
            cmd,
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=INNER_TIMEOUT_S,
            check=False,
        )
        events = []
        if record.exists():
            events = [json.loads(line) for line in record.read_text().splitlines() if line]
        return Run(proc.returncode, proc.stdout + proc.stderr, events, _outcomes(junit))


def _outcomes(junit: Path) -> Counter[str]:
    out: Counter[str] = Counter()
    if not junit.exists():
        return out
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        out[kinds[0] if kinds else "passed"] += 1
    return out


@pytest.fixture
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    engine = request.param
    name = unique_name("dj")
    root = tmp_path / "site"
    shutil.copytree(SITE, root, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    try:
        yield Project(engine, name, root)
    finally:
        drop_databases(engine, name)
    assert server_databases(engine, name) == []


def assert_passed(run: Run) -> None:
    assert run.returncode == 0, run.describe()
    assert run.outcomes["passed"] >= 20, run.describe()
    assert set(run.outcomes) == {"passed"}, run.describe()


def assert_landed_per_worker(run: Run, name: str) -> None:
    """Every alias of every worker used that worker's own test database, as the server says."""
    landed = run.landed()
    workers = {e["worker"] for e in landed}
    assert workers == {f"gw{n}" for n in range(WORKERS)}, run.describe()
    for e in landed:
        expected = {
            "default": f"test_{name}_{e['worker']}",
            "replica": f"test_{name}_{e['worker']}",
            "other": f"{name}_ot_{e['worker']}",
        }[e["alias"]]
        assert (e["settings"], e["server"]) == (expected, expected), e
    children = [e for e in run.events if e["event"] == "child"]
    assert children, run.describe()
    assert all(e["stdout"] == e["settings"] for e in children), children


def expected_migrations(name: str) -> Counter[tuple[str, str, str]]:
    """Each RunPython once, into the alias's template."""
    return Counter(
        {
            ("shop.0003", "default", f"test_{name}_dzt"): 1,
            ("ledger.0002", "other", f"{name}_ot_dzt"): 1,
        }
    )


def summary_line(run: Run, alias: str) -> str:
    lines = [ln for ln in run.output.splitlines() if ln.startswith(f"dagz django: {alias} (")]
    assert len(lines) == 1, run.describe()
    return lines[0]


@pytest.mark.parametrize("project", ["pg", "mysql"], indirect=True)
def test_migrate_once_clone_per_worker_keep_across_runs(project: Project) -> None:
    name = project.name
    first = project.run()
    assert_passed(first)
    assert_landed_per_worker(first, name)
    assert first.migrations() == expected_migrations(name), first.describe()
    assert re.search(
        rf"template test_{name}_dzt built \(\d+ migrations, [\d.]+ s; missing\); "
        rf"copies: {WORKERS} cloned",
        summary_line(first, "default"),
    ), first.describe()
    on_server = server_databases(project.engine, name)
    for n in range(WORKERS):
        assert {f"test_{name}_gw{n}", f"{name}_ot_gw{n}"} <= set(on_server), on_server
    assert not [db for db in on_server if "_jw" in db], on_server

    second = project.run()
    assert_passed(second)
    assert_landed_per_worker(second, name)
    assert second.migrations() == Counter(), second.describe()
    for alias in ("default", "other"):
        assert f"copies: 0 cloned, {WORKERS} kept" in summary_line(second, alias)
        assert " kept (" in summary_line(second, alias).split("; copies")[0]

    models = project.root / "shop" / "models.py"
    models.write_text(
        models.read_text().replace(
            '    sku = models.CharField(max_length=32, blank=True, default="", db_index=True)\n',
            '    sku = models.CharField(max_length=32, blank=True, default="", db_index=True)\n'
            "    note = models.CharField(max_length=50, null=True)\n",
        )
    )
    (project.root / "shop" / "migrations" / "0004_product_note.py").write_text(NEW_MIGRATION)
    third = project.run()
    assert_passed(third)
    assert_landed_per_worker(third, name)
    assert third.migrations() == expected_migrations(name), third.describe()
    assert "migrations changed" in summary_line(third, "default"), third.describe()
    assert column_exists(project.engine, f"test_{name}_gw0", "shop_product", "note")


@pytest.mark.parametrize("project", ["pg"], indirect=True)
def test_without_a_dagz_conftest_and_create_db(project: Project) -> None:
    """pytest-django alone under dagz (no PG_CONFIG conftest): the same per-worker names;
    ``--create-db`` rebuilds the template and every copy."""
    name = project.name
    first = project.run(conftest=False)
    assert_passed(first)
    assert_landed_per_worker(first, name)
    assert first.migrations() == expected_migrations(name), first.describe()

    forced = project.run("--create-db", conftest=False)
    assert_passed(forced)
    assert forced.migrations() == expected_migrations(name), forced.describe()
    assert "forced" in summary_line(forced, "default"), forced.describe()
    assert f"copies: {WORKERS} cloned" in summary_line(forced, "default"), forced.describe()
