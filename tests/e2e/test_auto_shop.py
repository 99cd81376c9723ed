"""Issue 13 acceptance: the example suite (``examples/shop``) with the dagz part of its conftest
removed — no ``configure()``, no ``dagz.otel``, and its clean-up always on, as a suite written
for serial runs has it — passes on 4 workers under ``--dagz-workers 4`` and under
``LD_PRELOAD=$(dagz shim-path) pytest -n 4``, and collides without dagz.

The copy runs on databases of this e2e run (``SHOP_PG_DATABASE`` / ``SHOP_MYSQL_DATABASE``);
an extra test file in the copy records, per test, where the server says its connections are."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from plugin_support import SampleDatabases, child_env, run_process

from support import REPO_ROOT, VENV_PYTHON, unique_name

SHOP = REPO_ROOT / "examples" / "shop"

LANDING_TEST = '''
"""Where this worker's connections are, as the servers say (added by dagz's e2e suite)."""
import json, os

import MySQLdb
import psycopg
import pytest

from shopapp.settings import load


@pytest.mark.parametrize("n", range(8))
def test_landing(n):
    s = load()
    with psycopg.connect(s.pg_conninfo) as conn:
        pg = conn.execute("SELECT current_database()").fetchone()[0]
    my_conn = MySQLdb.connect(**s.mysql_kwargs())
    cur = my_conn.cursor()
    cur.execute("SELECT DATABASE()")
    my = cur.fetchone()[0]
    my_conn.close()
    line = json.dumps({"worker": os.environ.get("PYTEST_XDIST_WORKER", ""), "pg": pg, "my": my})
    fd = os.open(os.environ["DZ_EVENTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, (line + "\\n").encode())
    os.close(fd)
'''


def strip_dagz(conftest: str) -> str:
    """The example's root conftest without its dagz part: the configure() calls and the
    dagz.otel block go; `_not_rerouted` has nothing to bypass; the clean-up before each test
    always runs (a serial suite does not know whether it was rerouted)."""
    start = conftest.index("try:\n    from dagz.integ")
    end = conftest.index("# -- the base databases")
    out = conftest[:start] + "PG_CONFIG = None\nMYSQL_CONFIG = None\n\n\n" + conftest[end:]
    for prop in ("pg", "mysql"):
        old = f"return self.{prop}_database != SETTINGS.{prop}_database"
        assert out.count(old) == 1, f"examples/shop/conftest.py changed: no {old!r}"
        out = out.replace(old, "return False")
    assert not re.search(r"^\s*(import|from) dagz", out, re.MULTILINE), out
    return out


@dataclass
class Shop:
    dir: Path
    pg: SampleDatabases
    mysql: SampleDatabases

    def run(self, *args: str, preload: Path | None = None) -> tuple[int, str, list[dict]]:
        events = self.dir / "events.jsonl"
        events.unlink(missing_ok=True)
        extra = {
            "SHOP_PG_DATABASE": self.pg.base,
            "SHOP_MYSQL_DATABASE": self.mysql.base,
            "DZ_EVENTS": str(events),
        }
        if preload is not None:
            extra["LD_PRELOAD"] = str(preload)
        argv = [str(VENV_PYTHON), "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
        rc, out, err, _ = run_process(argv, child_env(extra), self.dir, timeout=600)
        landed = [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []
        return rc, out + err, landed


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    target = tmp_path / "shop"
    shutil.copytree(SHOP, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    conftest = target / "conftest.py"
    conftest.write_text(strip_dagz(conftest.read_text()))
    (target / "tests" / "test_zz_landing.py").write_text(LANDING_TEST)
    # Auto mode covers the SQL families; the example's Redis cache and RabbitMQ queue tests need
    # their DAGZ configuration (REDIS_CONFIG / RABBITMQ_CONFIG), which the strip removed.
    for name in ("test_cache.py", "test_tasks.py"):
        (target / "tests" / name).unlink(missing_ok=True)
    pg, mysql = SampleDatabases(unique_name("shop")), SampleDatabases(unique_name("shopa"))
    try:
        yield Shop(target, pg, mysql)
    finally:  # the bases (made by the suite's migration) and every worker copy
        pg.drop_all()
        mysql.drop_all()


def _check(shop: Shop, rc: int, output: str, landed: list[dict]) -> None:
    assert rc == 0, output[-8000:]
    assert re.search(r"\b\d{3} passed", output), output[-3000:]
    workers = {e["worker"] for e in landed}
    assert len(landed) == 8, landed
    assert workers <= {f"gw{i}" for i in range(4)}, landed
    for e in landed:
        suffix = f"_jw{int(e['worker'][2:]):02}"
        assert (e["pg"], e["my"]) == (shop.pg.base + suffix, shop.mysql.base + suffix), e
    assert "auto mode for MYSQL_CONFIG, PG_CONFIG" in output, output[-3000:]


def test_stripped_shop_passes_with_dagz_workers(shop: Shop) -> None:
    _check(shop, *shop.run("--dagz-workers", "4"))


def test_stripped_shop_passes_with_preload_and_n(shop: Shop, shim: Path) -> None:
    _check(shop, *shop.run("-n", "4", preload=shim))


def test_stripped_shop_collides_without_dagz(shop: Shop) -> None:
    rc, output, landed = shop.run("-n", "4", "-p", "no:dagz")
    assert rc == 1, output[-8000:]
    assert re.search(r"\d+ failed|\d+ errors?", output), output[-3000:]
    assert {(e["pg"], e["my"]) for e in landed} <= {(shop.pg.base, shop.mysql.base)}, landed
