"""Issue 13 acceptance: the example suite (``examples/shop``) with the dagz part of its conftest
removed — no ``configure()``, no ``dagz.otel``, and its clean-up always on, as a suite written
for serial runs has it — passes on 4 workers under ``--dagz-workers 4`` and under
``LD_PRELOAD=$(dagz shim-path) pytest -n 4``, and collides without dagz.

The copy runs on databases of this e2e run (``SHOP_PG_DATABASE`` / ``SHOP_MYSQL_DATABASE``);
an extra test file in the copy records, per test, where the server says its connections are."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from plugin_support import SampleDatabases, child_env, run_process

from support import REPO_ROOT, VENV_PYTHON, unique_name


def _load_script() -> ModuleType:
    """scripts/shop_without_dagz.py: the copy of the example without dagz (also `make demo`'s)."""
    path = REPO_ROOT / "scripts" / "shop_without_dagz.py"
    spec = importlib.util.spec_from_file_location("shop_without_dagz", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_without_dagz = _load_script()

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
    target = _without_dagz.copy_without_dagz(tmp_path / "shop")
    (target / "tests" / "test_zz_landing.py").write_text(LANDING_TEST)
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
