"""Worker leases of the Redis and RabbitMQ families (issue 15): two runs that share one Redis
server and one RabbitMQ broker never share a worker index or a worker vhost, and a worker uses
the same number for every family (its PostgreSQL database, its Redis block, its vhost).

Proved on the servers: each inner test records the index its connection is on (``CLIENT
INFO``), the lease connections ``CLIENT LIST`` shows, the vhost the management API puts its
queue in, and (with PostgreSQL) ``current_database()``. The Redis server is a private one
(`service_support.private_redis`); the vhosts are named ``<run prefix>_<8 hex>_jwNN`` and deleted at
the end (`service_support.vhost_prefix`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from dagz.engines import rabbitmq
from dagz.engines import redis as engine_redis
from dagz.families import RABBITMQ_CONFIG
from dagz.lease.service import AmqpLease, RedisLease
from plugin_support import APPEND_EVENT, child_env, run_inline_project, run_process
from service_support import keyspace as _keyspace
from service_support import mq_api as _api
from test_rabbitmq import INNER_API
from test_redis import pg_base  # noqa: F401 - the fixture

from support import PG_HOST, PG_PORT, PG_USER, VENV_PYTHON

CONFTEST = """
import os
from dagz.integ.kombu import RABBITMQ_CONFIG
from dagz.integ.redis import REDIS_CONFIG

REDIS_CONFIG.configure(rewrite_db_name=REDIS_CONFIG.default_rewrite_db_name)
REDIS_CONFIG.block_size = 1  # the application uses index 0 only: 15 worker blocks of 16


def rewrite(vhost, session):
    return os.environ["DZ_PREFIX"] + session.suffix


RABBITMQ_CONFIG.configure(rewrite, RABBITMQ_CONFIG.default_should_reroute, RABBITMQ_CONFIG.truncate)
if os.environ.get("DZ_BASE"):
    from dagz.integ.psycopg import PG_CONFIG

    PG_CONFIG.configure(
        PG_CONFIG.default_rewrite_db_name,
        PG_CONFIG.default_should_reroute,
        None,
        worker_init=PG_CONFIG.create_worker_init(
            [os.environ["DZ_BASE"]], host=os.environ["DZ_PG_HOST"],
            port=int(os.environ["DZ_PG_PORT"]), user=os.environ["DZ_PG_USER"],
        ),
    )
"""

TESTS = (
    """
import json, os, time
import kombu, pytest, redis

RUN, SYNC = os.environ["DZ_RUN"], os.environ["DZ_SYNC"]


def wait_for(predicate, seconds):
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        time.sleep(0.05)


"""
    + INNER_API
    + """

@pytest.mark.parametrize("n", range(2))
def test_services(n):
    me = os.environ["PYTEST_XDIST_WORKER"]
    open(os.path.join(SYNC, f"{RUN}.{me}"), "w").close()
    wait_for(lambda: any(f.startswith(os.environ["DZ_WAIT_FOR"]) for f in os.listdir(SYNC)), 60)
    r = redis.Redis(port=int(os.environ["DZ_REDIS_PORT"]))
    r.set("k", f"{RUN}:{me}")
    queue = f"{os.environ['DZ_PREFIX']}_{RUN}_{me}"
    with kombu.Connection("amqp://guest@127.0.0.1//") as conn:
        q = conn.SimpleQueue(queue)
        q.put({"run": RUN, "worker": me})
        got = q.get(timeout=10)
        got.ack()
        payload = got.payload
        time.sleep(0.5)  # both runs hold their leases meanwhile
        vhosts = sorted({x["vhost"] for x in api("/api/queues?columns=name,vhost")
                         if x["name"] == queue})
        q.close()
    leases = [c["name"] for c in r.client_list() if c["name"].startswith("dagz-lease:")]
    pg = None
    if os.environ.get("DZ_BASE"):
        import psycopg
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname=os.environ["DZ_BASE"]) as c:
            pg = c.execute("SELECT current_database()").fetchone()[0]
    event = {"run": RUN, "worker": me, "key": r.get("k").decode(), "db": r.client_info()["db"],
             "pid": os.getpid(), "leases": leases, "vhosts": vhosts, "payload": payload, "pg": pg}
    append_event(event)
"""
    + APPEND_EVENT
)

_MOVED = re.compile(r"gw(\d+) → worker (\d+) \(worker (\d+) is leased by another run\)")


def _run_both(root: Path, env: dict[str, str]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    project = root / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_services.py").write_text(TESTS)
    (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (root / "sync").mkdir()
    events = root / "events.jsonl"

    def one(run: str, other: str) -> tuple[int, str, str, float]:
        tmp = root / f"tmp-{run}"
        tmp.mkdir()
        extra = {"TMPDIR": str(tmp), "DZ_RUN": run, "DZ_WAIT_FOR": f"{other}.", **env}
        extra |= {"DZ_SYNC": str(root / "sync"), "DZ_EVENTS": str(events)}
        extra["XDG_CACHE_HOME"] = str(root / "cache")
        argv = [str(VENV_PYTHON), "-m", "pytest", f"--basetemp={root / f'bt-{run}'}", "-q"]
        return run_process([*argv, "--dagz-workers", "2", str(project)], child_env(extra), root)

    with ThreadPoolExecutor(2) as pool:
        futures = {run: pool.submit(one, run, other) for run, other in (("a", "b"), ("b", "a"))}
        results = {run: f.result() for run, f in futures.items()}
    outs = {}
    for run, (rc, out, err, _s) in results.items():
        assert rc == 0, f"run {run} failed:\n{out[-6000:]}\n{err[-4000:]}"
        outs[run] = out
    lines = events.read_text().splitlines() if events.exists() else []
    return outs, [json.loads(line) for line in lines]


@pytest.mark.parametrize("with_pg", [False, True], ids=["redis-rabbitmq", "with-postgres"])
def test_two_runs_sharing_redis_and_rabbitmq_use_disjoint_indexes_and_vhosts(
    tmp_path: Path,
    private_redis: int,
    vhost_prefix: str,
    pg_base: str,  # noqa: F811 - the fixture
    with_pg: bool,
) -> None:
    """Two ``--dagz-workers 2`` runs started together, every test waiting until the other run
    has started: both pass, the Redis indexes (CLIENT INFO) and the vhosts (management API)
    under each run are disjoint, each worker's lease connection (CLIENT LIST) names its own
    index, a worker's Redis block, vhost and PostgreSQL database carry one number, the runs
    that moved say so, and no lease outlives the runs."""
    port = private_redis
    env = {"DZ_REDIS_PORT": str(port), "DZ_PREFIX": vhost_prefix}
    if with_pg:
        env |= {"DZ_BASE": pg_base, "DZ_PG_HOST": PG_HOST, "DZ_PG_PORT": str(PG_PORT)}
        env["DZ_PG_USER"] = PG_USER
    outs, events = _run_both(tmp_path, env)
    assert len(events) == 4, events  # 2 tests in each run
    used: dict[str, set[tuple[str, object]]] = defaultdict(set)
    numbers: dict[str, dict[str, int]] = defaultdict(dict)
    for e in events:
        assert e["key"] == f"{e['run']}:{e['worker']}", e
        assert e["payload"] == {"run": e["run"], "worker": e["worker"]}, e
        assert len(e["vhosts"]) == 1, e
        m = re.fullmatch(re.escape(vhost_prefix) + r"_jw(\d\d)", e["vhosts"][0])
        assert m, e
        num = int(m[1])
        assert e["db"] == num + 1, e  # blocks of 1: worker w's index 0 is w + 1
        if with_pg:
            assert e["pg"] == f"{pg_base}_jw{num:02}", e
        mine = f"dagz-lease:i{e['db']}:p{e['pid']}"
        assert mine in e["leases"], e
        assert not [x for x in e["leases"] if x.startswith(f"dagz-lease:i{e['db']}:") and x != mine]
        used[e["run"]] |= {("redis", e["db"]), ("vhost", e["vhosts"][0])}
        numbers[e["run"]][e["worker"]] = num
    shared = used["a"] & used["b"]
    assert not shared, f"used by both runs: {sorted(shared, key=str)}"
    moved = 0
    for run, out in outs.items():
        said = {(int(m[1]), int(m[2])) for m in _MOVED.finditer(out)}
        for worker, num in numbers[run].items():
            if num != int(worker.removeprefix("gw")):
                moved += 1
                assert (int(worker.removeprefix("gw")), num) in said, out
    assert moved >= 2, numbers  # the runs overlapped: one of them moved on
    clients = redis.Redis(port=port).client_list()
    assert not [c for c in clients if c["name"].startswith("dagz-lease:")], clients
    queues = _api("GET", "/api/queues?columns=name,vhost")
    assert not [q for q in queues if q["vhost"].startswith(vhost_prefix) and "lease" in q["name"]]


def _dagz_db(env: dict[str, str], *args: str) -> str:
    argv = [str(VENV_PYTHON), "-m", "dagz.cli", "db", "drop", *args]
    done = subprocess.run(
        argv, env=child_env(env), capture_output=True, text=True, timeout=120, check=False
    )
    return done.stdout + done.stderr


def test_db_drop_spares_an_index_and_a_vhost_a_live_run_holds(
    tmp_path: Path,
    private_redis: int,
    vhost_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``dagz db drop`` leaves a Redis index and a vhost whose worker lease a live process
    holds (the lease connections of `dagz.lease.service`, as a worker takes them), drops the
    unleased ones, and drops the others once the holder is gone."""
    port = private_redis
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    kw = {"host": "127.0.0.1", "port": port}
    for index in (2, 3):
        engine_redis.claim(kw, index, index - 1, "0")
        redis.Redis(port=port, db=index).set("k", "v")
    mq = {"host": "127.0.0.1", "port": 5672, "user": "guest", "password": "guest"}
    held_vh, free_vh = f"{vhost_prefix}_jw00", f"{vhost_prefix}_jw01"
    for n, vh in enumerate((held_vh, free_vh)):
        rabbitmq.ensure_vhost(mq, vh, vhost_prefix, n)
    redis_lease, amqp_lease = RedisLease(kw), AmqpLease(mq, mq, RABBITMQ_CONFIG)
    try:
        assert redis_lease.try_take("2")
        assert amqp_lease.try_take(held_vh)
        out = _dagz_db(env, "--engine", "redis", "--port", str(port), "--all")
        out += _dagz_db(env, "--engine", "rabbitmq", "--base", vhost_prefix)
        for said in ("skipped redis 2", "dropped redis 3", f"skipped rabbitmq {held_vh}"):
            assert said in out, out
        assert f"dropped rabbitmq {free_vh}" in out, out
        assert redis.Redis(port=port, db=2).dbsize() == 1
        assert redis.Redis(port=port, db=3).dbsize() == 0
        names = {v["name"] for v in _api("GET", "/api/vhosts")}
        assert held_vh in names
        assert free_vh not in names
    finally:
        redis_lease.close()
        amqp_lease.close()
    out = _dagz_db(env, "--engine", "redis", "--port", str(port), "--all")
    out += _dagz_db(env, "--engine", "rabbitmq", "--base", vhost_prefix)
    assert "dropped redis 2" in out, out
    assert f"dropped rabbitmq {held_vh}" in out, out
    assert redis.Redis(port=port, db=2).dbsize() == 0


HOLDER = """
import sys, time
from dagz.families import RABBITMQ_CONFIG
from dagz.lease.service import AmqpLease, RedisLease
port, vhost = int(sys.argv[1]), sys.argv[2]
mq = {"host": "127.0.0.1", "port": 5672, "user": "guest", "password": "guest"}
r, a = RedisLease({"host": "127.0.0.1", "port": port}), AmqpLease(mq, mq, RABBITMQ_CONFIG)
assert r.try_take("4") and a.try_take(vhost)
print("held", flush=True)
time.sleep(600)
"""


def test_a_killed_holder_frees_its_leases(
    tmp_path: Path,
    private_redis: int,
    vhost_prefix: str,
) -> None:
    """A process holding a Redis index and a vhost lease is killed (SIGKILL: no cleanup runs):
    the servers end its connections, and the leases can be taken again, with nothing to sweep.
    While it lives, they cannot."""
    port, vhost = private_redis, f"{vhost_prefix}_jw04"
    mq = {"host": "127.0.0.1", "port": 5672, "user": "guest", "password": "guest"}
    argv = [str(VENV_PYTHON), "-c", HOLDER, str(port), vhost]
    env = child_env({"XDG_CACHE_HOME": str(tmp_path / "cache")})
    holder = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    r, a = RedisLease({"host": "127.0.0.1", "port": port}), AmqpLease(mq, mq, RABBITMQ_CONFIG)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert not r.try_take("4")
        assert not a.try_take(vhost)
        holder.kill()
        holder.wait(timeout=30)
        deadline = time.monotonic() + 30  # the servers notice the closed sockets
        while not (r.try_take("4") and a.try_take(vhost)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert r.held == {"4"}
        assert a.held == {vhost}
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)
        r.close()
        a.close()


def test_a_lease_connection_the_server_closed_is_taken_again(
    private_redis: int,
) -> None:
    """The server closes a Redis lease connection (``CLIENT KILL``): the check after each test
    (`refresh`) sees the lease gone, not a connection redis-py quietly made again without its
    name, and takes it again (CLIENT LIST shows the name once more)."""
    port = private_redis
    admin = redis.Redis(port=port)
    lease = RedisLease({"host": "127.0.0.1", "port": port})
    mine = f"dagz-lease:i5:p{os.getpid()}"
    try:
        assert lease.try_take("5")
        ids = [c["id"] for c in admin.client_list() if c["name"] == mine]
        assert len(ids) == 1
        admin.execute_command("CLIENT", "KILL", "ID", ids[0])
        assert not [c for c in admin.client_list() if c["name"] == mine]
        assert lease.refresh() == set()
        assert [c["name"] for c in admin.client_list() if c["name"] == mine] == [mine]
    finally:
        lease.close()


LIMITED_CONFTEST = """
from dagz.integ.redis import REDIS_CONFIG
REDIS_CONFIG.configure(rewrite_db_name=REDIS_CONFIG.default_rewrite_db_name)
"""

LIMITED_TESTS = """
import os, redis

def test_limited_user():
    r = redis.Redis(port=int(os.environ["DZ_REDIS_PORT"]), username="dz_limited", password="pw")
    r.set("k", "v")
"""


def test_a_user_without_client_rights_falls_back_to_lease_files(
    tmp_path: Path,
    private_redis: int,
) -> None:
    """A Redis user that may not run ``CLIENT`` (ACL ``-client``): the
    lease cannot live on the server, so it is a machine-local lease file, which the summary
    says; the test still runs on its worker's index."""
    port = private_redis
    admin = redis.Redis(port=port)
    acl = ("on", ">pw", "~*", "&*", "+@all", "-client")
    admin.execute_command("ACL", "SETUSER", "dz_limited", *acl)
    leases = tmp_path / "leases"
    env = {"DZ_REDIS_PORT": str(port), "XDG_CACHE_HOME": str(tmp_path / "c")}
    env["DAGZ_LEASE_DIR"] = str(leases)
    files = {"conftest.py": LIMITED_CONFTEST, "test_limited.py": LIMITED_TESTS}
    rc, out, _ = run_inline_project(tmp_path, files, "--dagz-workers", "1", env=env)
    assert rc == 0, out
    assert "REDIS_CONFIG: its server cannot hold them" in out, out
    assert "worker leases are lock files in" in out, out
    assert _keyspace(port) == {8: 1}  # 1 worker: blocks of 16 // 2 = 8, worker 0's index 0 -> 8
    assert not [c for c in admin.client_list() if c["name"].startswith("dagz-lease:")]
    assert not (list(leases.iterdir()) if leases.exists() else []), "lease files left"
