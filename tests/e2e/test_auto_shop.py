"""Issue 13 acceptance: the example suite (``examples/shop``) with the dagz part of its conftests
removed — no ``configure()`` of any family, no ``dagz.otel``, and its clean-up always on (SQL
tables, Redis keys, RabbitMQ queues), as a suite written for serial runs has it — passes on 4
workers under ``--dagz-workers 4`` and under ``LD_PRELOAD=$(dagz shim-path) pytest -n 4``, its
Redis cache and RabbitMQ task tests included, and collides without dagz.

The copy runs on databases of this e2e run (``SHOP_PG_DATABASE`` / ``SHOP_MYSQL_DATABASE``), a
private redis-server (``SHOP_REDIS_URL``: its index 0 and the worker indexes are this test's
own, whatever else uses the machine's Redis) and a ``dz_`` vhost (``SHOP_AMQP_URL``; the worker
vhosts are ``<vhost>_jwNN``). An extra test file in the copy records, per test, where the
servers say its connections are (``current_database()``, ``DATABASE()``, ``CLIENT INFO``) and
declares a queue named after its worker, which the management API then finds in that worker's
vhost only; its Redis keys, named after the worker, are only in that worker's index (``INFO
keyspace``, ``SCAN``)."""

from __future__ import annotations

import importlib.util
import json
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import redis
from plugin_support import APPEND_EVENT, SampleDatabases, child_env, run_process
from service_support import drop_vhosts, keyspace, make_vhost, mq_api

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

LANDING_TEST = (
    '''
"""Where this worker's connections are, as the servers say (added by dagz's e2e suite)."""
import json, os

import kombu
import MySQLdb
import psycopg
import pytest

from shopapp import cache
from shopapp.settings import load


@pytest.mark.parametrize("n", range(8))
def test_landing(n):
    s = load()
    me = os.environ.get("PYTEST_XDIST_WORKER", "")
    with psycopg.connect(s.pg_conninfo) as conn:
        pg = conn.execute("SELECT current_database()").fetchone()[0]
    my_conn = MySQLdb.connect(**s.mysql_kwargs())
    cur = my_conn.cursor()
    cur.execute("SELECT DATABASE()")
    my = cur.fetchone()[0]
    my_conn.close()
    r = cache.connect(s)
    r.set(f"dz_landing:{me}:{n}", me)
    db = r.client_info()["db"]
    r.close()
    with kombu.Connection(s.amqp_url) as conn:
        q = conn.SimpleQueue(f"dz_landing_{me}")
        q.put({"n": n})
        vhost = conn.connection.virtual_host
        q.close()
    append_event({"worker": me, "pg": pg, "my": my, "redis": db, "vhost": vhost})
'''
    + APPEND_EVENT
)


@dataclass
class Shop:
    dir: Path
    pg: SampleDatabases
    mysql: SampleDatabases
    redis_port: int
    vhost: str
    #: tests/<file> -> outcomes ("passed", "failed", "error", "skipped") of the last run.
    outcomes: dict[str, list[str]] | None = None

    def run(self, *args: str, preload: Path | None = None) -> tuple[int, str, list[dict]]:
        events = self.dir / "events.jsonl"
        events.unlink(missing_ok=True)
        junit = self.dir / "junit.xml"
        junit.unlink(missing_ok=True)
        extra = {
            "SHOP_PG_DATABASE": self.pg.base,
            "SHOP_MYSQL_DATABASE": self.mysql.base,
            "SHOP_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "SHOP_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/"
            + urllib.parse.quote(self.vhost, safe=""),
            "XDG_CACHE_HOME": str(self.dir.parent / "cache"),  # dagz's Redis index registry
            "DZ_EVENTS": str(events),
        }
        if preload is not None:
            extra["LD_PRELOAD"] = str(preload)
        argv = [str(VENV_PYTHON), "-m", "pytest", "-p", "no:cacheprovider", "-q"]
        argv += [f"--junitxml={junit}", *args]
        rc, out, err, _ = run_process(argv, child_env(extra), self.dir, timeout=900)
        landed = [json.loads(x) for x in events.read_text().splitlines()] if events.exists() else []
        self.outcomes = _outcomes(junit) if junit.exists() else {}
        return rc, out + err, landed


def _outcomes(junit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for case in ET.parse(junit).iter("testcase"):
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        module = str(case.get("classname", "")).split(".")[1] + ".py"
        out.setdefault(module, []).append(kinds[0] if kinds else "passed")
    return out


@pytest.fixture
def shop(tmp_path: Path, private_redis: int) -> Iterator[Shop]:
    target = _without_dagz.copy_without_dagz(tmp_path / "shop")
    (target / "tests" / "test_zz_landing.py").write_text(LANDING_TEST)
    pg, mysql = SampleDatabases(unique_name("shop")), SampleDatabases(unique_name("shopa"))
    vhost = unique_name("shopq")
    make_vhost(vhost)  # the application's vhost (a run without dagz uses it)
    try:
        yield Shop(target, pg, mysql, private_redis, vhost)
    finally:  # the bases (made by the suite's migration), every worker copy, the vhosts
        pg.drop_all()
        mysql.drop_all()
        drop_vhosts(vhost)


def _check(shop: Shop, rc: int, output: str, landed: list[dict]) -> None:
    assert rc == 0, output[-8000:]
    assert re.search(r"\b\d{3} passed", output), output[-3000:]
    workers = {e["worker"] for e in landed}
    assert len(landed) == 8, landed
    assert workers <= {f"gw{i}" for i in range(4)}, landed
    for e in landed:
        w = int(e["worker"][2:])
        suffix = f"_jw{w:02}"
        assert (e["pg"], e["my"]) == (shop.pg.base + suffix, shop.mysql.base + suffix), e
        # 16 databases, 4 workers: blocks of 3, worker w's index 0 is 3·(w+1) (CLIENT INFO)
        assert (e["redis"], e["vhost"]) == (3 * (w + 1), shop.vhost + suffix), e
    auto = "auto mode for MYSQL_CONFIG, PG_CONFIG, RABBITMQ_CONFIG, REDIS_CONFIG"
    assert auto in output, output[-3000:]
    # the Redis cache and RabbitMQ task tests ran, and passed
    assert shop.outcomes is not None
    for module in ("test_cache.py", "test_tasks.py"):
        assert shop.outcomes.get(module), shop.outcomes
        assert set(shop.outcomes[module]) == {"passed"}, (module, shop.outcomes[module])
    _check_service_landing(shop, landed)


def _check_service_landing(shop: Shop, landed: list[dict]) -> None:
    """The servers' side: each worker's keys are in its own index only, index 0 (the
    application's) holds none; each worker's queue is in its own vhost only, and the
    application's vhost holds no queue."""
    indexes = keyspace(shop.redis_port)
    assert 0 not in indexes, indexes
    for index in indexes:
        client = redis.Redis(port=shop.redis_port, db=index, decode_responses=True)
        try:
            owners = {k.split(":")[1] for k in client.scan_iter(match="dz_landing:*")}
        finally:
            client.close()
        workers = {e["worker"] for e in landed if e["redis"] == index}
        assert owners == workers, (index, owners, workers)
    queues = mq_api("GET", "/api/queues?columns=name,vhost")
    mine = [(q["vhost"], q["name"]) for q in queues if q["vhost"].startswith(shop.vhost)]
    assert not [q for q in mine if q[0] == shop.vhost], mine
    for worker in {e["worker"] for e in landed}:
        where = {v for v, name in mine if name == f"dz_landing_{worker}"}
        assert where == {f"{shop.vhost}_jw{int(worker[2:]):02}"}, (worker, mine)


def test_stripped_shop_passes_with_dagz_workers(shop: Shop) -> None:
    _check(shop, *shop.run("--dagz-workers", "4"))


def test_stripped_shop_passes_with_preload_and_n(shop: Shop, shim: Path) -> None:
    _check(shop, *shop.run("-n", "4", preload=shim))


def test_stripped_shop_collides_without_dagz(shop: Shop) -> None:
    rc, output, landed = shop.run("-n", "4", "-p", "no:dagz")
    assert rc == 1, output[-8000:]
    assert re.search(r"\d+ failed|\d+ errors?", output), output[-3000:]
    bases = {(shop.pg.base, shop.mysql.base, 0, shop.vhost)}
    assert {(e["pg"], e["my"], e["redis"], e["vhost"]) for e in landed} <= bases, landed
    assert shop.outcomes is not None
    for module in ("test_cache.py", "test_tasks.py"):  # the service tests are part of it
        assert shop.outcomes.get(module), shop.outcomes
