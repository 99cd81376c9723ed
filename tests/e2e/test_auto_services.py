"""Auto mode for Redis and RabbitMQ (issue 13 with issue 15's families): a project with no
conftest — redis-py, kombu and pika on fixed keys, a fixed queue, fixed vhost — passes on 4
workers under ``--dagz-workers 4``; the servers say each worker's keys and queues were its own
(CLIENT INFO / INFO keyspace on a private redis-server; the management API for the vhosts,
``dz_`` run names). The same project collides without dagz, and ``--dagz-no-auto`` turns the
families off."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from plugin_support import run_inline_project
from service_support import BARRIER, keyspace, make_vhost, mq_api

TESTS = (
    BARRIER
    + """
import urllib.parse
import kombu, pika, pytest, redis

URL = "amqp://guest:guest@127.0.0.1:5672/" + urllib.parse.quote(os.environ["DZ_VHOST"], safe="")

@pytest.mark.parametrize("i", range(4))
def test_fixed_names(i):
    me = os.environ.get("PYTEST_XDIST_WORKER", "main")
    r = redis.Redis(port=int(os.environ["DZ_REDIS_PORT"]))  # index 0, like the application
    r.delete("jobs")
    r.set("owner", me)
    with kombu.Connection(URL) as conn:
        q = conn.SimpleQueue("dz_jobs")
        q.clear()
        barrier("cleared")
        for n in range(3):
            q.put({"from": me, "n": n})
            r.rpush("jobs", me)
        barrier("published")
        got = []
        while True:
            try:
                m = q.get(timeout=0.5)
            except q.Empty:
                break
            got.append(m.payload["from"])
            m.ack()
        vhost = conn.connection.virtual_host
        q.close()
    pc = pika.BlockingConnection(pika.URLParameters(URL))
    pika_vhost = pc._impl.params.virtual_host
    pc.channel().queue_declare("dz_pika")
    pc.close()
    owner, jobs = r.get("owner").decode(), [j.decode() for j in r.lrange("jobs", 0, -1)]
    db = r.client_info()["db"]
    with open(os.environ["DZ_OUT"], "a") as fh:
        fh.write(json.dumps({"worker": me, "db": db, "vhost": vhost, "pika": pika_vhost,
                             "owner": owner, "jobs": jobs, "got": got}) + "\\n")
    assert owner == me and jobs == [me] * 3 and got == [me] * 3
"""
)


@pytest.fixture
def vhost(vhost_prefix: str) -> str:
    """The application's vhost: a dz_ run name (its worker vhosts are ``<vhost>_jwNN``)."""
    return vhost_prefix


#: A plugin module that imports the drivers before dagz's plugin activates (`-p dz_early`): the
#: hooks must be installed on modules imported already, too.
EARLY = "import kombu, pika, redis, amqp  # noqa: F401\n"


def _run(
    tmp_path: Path, port: int, vhost: str, *args: str, early: bool = False
) -> tuple[int, str, list[dict]]:
    env = {"DZ_REDIS_PORT": str(port), "DZ_VHOST": vhost, "XDG_CACHE_HOME": str(tmp_path / "c")}
    files = {"test_fixed.py": TESTS}
    if early:
        files["dz_early.py"] = EARLY
        args = ("-p", "dz_early", *args)
    return run_inline_project(tmp_path, files, *args, env=env, timeout=300)


@pytest.mark.parametrize("early", [False, True], ids=["imported-by-tests", "imported-first"])
def test_redis_and_rabbitmq_isolated_with_no_conftest(
    tmp_path: Path, private_redis: int, vhost: str, early: bool
) -> None:
    rc, out, events = _run(tmp_path, private_redis, vhost, "--dagz-workers", "4", early=early)
    assert rc == 0, out
    assert re.search(r"REDIS_CONFIG \(auto", out)
    assert re.search(r"RABBITMQ_CONFIG \(auto", out)
    assert "auto mode for RABBITMQ_CONFIG, REDIS_CONFIG" in out, out
    assert len(events) == 4, events
    for e in events:
        w = int(e["worker"][2:])
        # 16 databases, 4 workers: blocks of 3; worker w's index 0 is 3·(w+1) (server side)
        assert e["db"] == 3 * (w + 1), e
        assert e["vhost"] == e["pika"] == f"{vhost}_jw{w:02}", e
    used = {3 * (int(e["worker"][2:]) + 1) for e in events}
    # index 0 (the application's own) was never written; each worker's keys are in its index
    assert 0 not in keyspace(private_redis)
    assert set(keyspace(private_redis)) == used
    queues = mq_api("GET", "/api/queues?columns=name,vhost")
    mine = {(q["vhost"], q["name"]) for q in queues if q["vhost"].startswith(vhost)}
    for e in events:
        assert {(e["vhost"], "dz_jobs"), (e["vhost"], "dz_pika")} <= mine
    assert not [q for q in queues if q["vhost"] == vhost]  # the application's vhost: untouched
    made = {v["name"]: v for v in mq_api("GET", "/api/vhosts") if v["name"].startswith(vhost)}
    assert set(made) == {e["vhost"] for e in events}
    assert all("dagz" in (v.get("tags") or []) for v in made.values()), made


def test_collides_without_dagz(tmp_path: Path, private_redis: int, vhost: str) -> None:
    make_vhost(vhost)  # without dagz the application's vhost must exist
    rc, out, events = _run(tmp_path, private_redis, vhost, "-n", "4", "-p", "no:dagz", "-q")
    assert rc == 1, out
    assert re.search(r"\d+ failed", out), out
    assert {e["db"] for e in events} <= {0}, events


def test_no_auto_leaves_them_alone(tmp_path: Path, private_redis: int, vhost: str) -> None:
    make_vhost(vhost)
    _rc, out, events = _run(tmp_path, private_redis, vhost, "--dagz-workers", "4", "--dagz-no-auto")
    assert "REDIS_CONFIG (auto" not in out, out
    assert {e["db"] for e in events} <= {0}, events
    assert not [v for v in mq_api("GET", "/api/vhosts") if v["name"].startswith(vhost + "_jw")]


@pytest.mark.parametrize("private_redis", [4], indirect=True)
def test_too_few_redis_databases_fail_closed(
    tmp_path: Path, private_redis: int, vhost: str
) -> None:
    """4 workers need 5 blocks: with `databases 4` the connect fails with REDIS_CONFIG's
    message (how many are needed, how to raise it); nothing is written anywhere."""
    rc, out, events = _run(tmp_path, private_redis, vhost, "--dagz-workers", "4")
    assert rc == 1, out
    assert "dagz: REDIS_CONFIG: Redis index 0 cannot get a per-worker index" in out, out
    assert "need 5 databases" in out, out
    assert events == []
    assert keyspace(private_redis) == {}
