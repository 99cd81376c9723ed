"""Redis family (`dagz.integ.redis.REDIS_CONFIG`), proved on the server (CLIENT INFO, INFO
keyspace, PUBSUB CHANNELS).

Each test starts a private redis-server (a free port, `databases 16`, no persistence, in its tmp
dir) so that the indexes it flushes are its own, whatever else uses the machine's Redis; the
dagz registry of owned indexes goes to the test's own XDG_CACHE_HOME. With 4 workers and 16
databases the documented mapping gives blocks of 3: worker w's index 0 is 3·(w+1).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from dagz.config import Session
from dagz.families import RABBITMQ_CONFIG
from plugin_support import run_inline_project
from service_support import BARRIER
from service_support import keyspace as _keyspace

from support import PG_HOST, PG_PORT, PG_USER, drop_everything_named, unique_name

#: DAGZ's integration playbook, unchanged: PostgreSQL is not configured, so it runs in auto mode.
PLAYBOOK = """
from dagz.integ.psycopg import PG_CONFIG
from dagz.integ.redis import REDIS_CONFIG
REDIS_CONFIG.configure(rewrite_db_name=REDIS_CONFIG.default_rewrite_db_name)
"""

PLAYBOOK_CONFTEST = (
    PLAYBOOK
    + """
PG_CONFIG.configure(
    PG_CONFIG.default_rewrite_db_name,
    PG_CONFIG.default_should_reroute,
    None,
    worker_init=PG_CONFIG.create_worker_init(
        [{base!r}], host={host!r}, port={pg_port}, user={user!r}
    ),
)
"""
)

ISOLATION_TESTS = (
    BARRIER
    + """
import os, psycopg, pytest, redis

@pytest.mark.parametrize("i", range(4))
def test_isolated(i):
    me = os.environ["PYTEST_XDIST_WORKER"]
    port = int(os.environ["DZ_REDIS_PORT"])
    r = redis.Redis(port=port)
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.subscribe("news")
    r.set("k", me)
    barrier("set")
    seen_k = r.get("k").decode()
    barrier("read")
    r.flushall()
    barrier("flushed")
    after_flush = r.dbsize()
    for n in range(5):
        r.publish("news", f"{me}:{n}")
    barrier("published")
    got, deadline = [], time.monotonic() + 1.5
    while time.monotonic() < deadline:
        m = ps.get_message(timeout=0.1)
        if m:
            got.append((m["channel"].decode(), m["data"].decode()))
    info = r.client_info()
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=os.environ["DZ_BASE"]) as c:
        pg = c.execute("SELECT current_database()").fetchone()[0]
    emit(worker=me, k=seen_k, after_flush=after_flush, got=got, redis_db=info["db"], pg=pg,
         logical_db=r.connection_pool.connection_kwargs.get("db", 0))
    ps.close()
"""
)


@pytest.fixture
def pg_base() -> Iterator[str]:
    base = unique_name("rd")
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{base}"')
    try:
        yield base
    finally:
        drop_everything_named(base)


@pytest.mark.parametrize(
    "pg_configured", [False, True], ids=["playbook-unchanged", "pg-configured"]
)
def test_playbook_conftest_reroutes_postgres_and_redis_per_worker(
    tmp_path: Path, private_redis: int, pg_base: str, pg_configured: bool
) -> None:
    """4 workers SET the same key, FLUSHALL and PUBLISH/SUBSCRIBE the same channel at the same
    time: each sees only its own key and messages, on its own index (CLIENT INFO), and its own
    PostgreSQL database; keys outside the workers' indexes survive every FLUSHALL."""
    port = private_redis
    admin = redis.Redis(port=port)
    sentinel = f"dz_sentinel_{uuid.uuid4().hex[:8]}"
    for index in (0, 15):  # the application's own index, and one no worker is given
        redis.Redis(port=port, db=index).set(sentinel, "keep")
    conftest = (
        PLAYBOOK_CONFTEST.format(base=pg_base, host=PG_HOST, pg_port=PG_PORT, user=PG_USER)
        if pg_configured
        else PLAYBOOK
    )
    env = {"DZ_REDIS_PORT": str(port), "DZ_BASE": pg_base, "XDG_CACHE_HOME": str(tmp_path / "c")}
    rc, out, events = run_inline_project(
        tmp_path,
        {"conftest.py": conftest, "test_iso.py": ISOLATION_TESTS},
        "--dagz-workers",
        "4",
        env=env,
        timeout=180,
    )
    assert rc == 0, out
    by_worker = {e["worker"]: e for e in events}
    assert sorted(by_worker) == ["gw0", "gw1", "gw2", "gw3"], out
    for worker, e in by_worker.items():
        w = int(worker[2:])
        assert e["k"] == worker, e
        assert e["after_flush"] == 0, e
        assert e["redis_db"] == 3 * (w + 1), e  # blocks of 16 // (4 + 1) = 3
        assert e["logical_db"] == 0, e  # the application still sees index 0
        assert e["pg"] == f"{pg_base}_jw{w:02}", e
        assert e["got"] == [["news", f"{worker}:{n}"] for n in range(5)], e
    for index in (0, 15):
        assert redis.Redis(port=port, db=index).get(sentinel) == b"keep"
    assert admin.pubsub_channels() == []
    assert set(_keyspace(port)) <= {0, 15}, _keyspace(port)


POOL_CONFTEST = """
from dagz.integ.redis import REDIS_CONFIG
REDIS_CONFIG.configure(
    REDIS_CONFIG.default_rewrite_db_name, REDIS_CONFIG.default_should_reroute, REDIS_CONFIG.truncate
)
"""

POOL_TESTS = (
    BARRIER
    + """
import asyncio, os, time, pytest, redis, redis.asyncio as aredis

PORT = int(os.environ["DZ_REDIS_PORT"])
CLIENT = redis.Redis.from_url(f"redis://127.0.0.1:{PORT}/1")
OTHER = redis.Redis(port=PORT, db=1, single_connection_client=True)

def test_a_first_writes():
    CLIENT.set("left", "over")
    OTHER.execute_command("SELECT", 2)
    OTHER.set("two", "x")
    emit(test="a", db=OTHER.client_info()["db"], keys=OTHER.dbsize())

def test_b_pooled_connections_are_prepared():
    # both connections were made by test a; prepare empties their indexes before first use
    emit(test="b", left=CLIENT.get("left"), db=CLIENT.client_info()["db"], two=OTHER.dbsize())

def test_c_asyncio_and_keyspace_events():
    async def main():
        a = aredis.from_url(f"redis://127.0.0.1:{PORT}/0")
        ps = a.pubsub()
        await ps.psubscribe("__keyspace@0__:*")
        await ps.get_message(timeout=1)
        await a.set("watched", 1)
        msg = None
        for _ in range(20):
            msg = await ps.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if msg:
                break
        info = await a.client_info()
        await ps.aclose()
        await a.aclose()
        return msg, info["db"]
    msg, db = asyncio.run(main())
    emit(test="c", channel=msg["channel"].decode() if msg else None, db=db)

def test_d_index_outside_the_blocks_fails_closed():
    with pytest.raises(redis.RedisError, match="databases 24"):
        redis.Redis(port=PORT, db=5).set("nope", 1)
"""
)


def test_pool_prepare_select_asyncio_keyspace_and_refusal(
    tmp_path: Path, private_redis: int
) -> None:
    """prepare (REDIS_CONFIG.truncate) runs before a test's first command also over a pooled
    connection from an earlier test; SELECT n, redis.asyncio and keyspace notifications are
    rerouted; an index beyond the blocks fails closed naming the `databases` it needs."""
    port = private_redis
    redis.Redis(port=port).config_set("notify-keyspace-events", "K$")
    env = {"DZ_REDIS_PORT": str(port), "XDG_CACHE_HOME": str(tmp_path / "c")}
    rc, out, events = run_inline_project(
        tmp_path,
        {"conftest.py": POOL_CONFTEST, "test_pool.py": POOL_TESTS},
        "--dagz-workers",
        "3",
        "--dist",
        "loadfile",
        env=env,
    )
    assert rc == 0, out
    ev = {e["test"]: e for e in events}
    # 3 workers: blocks of 16 // 4 = 4; this file ran on one worker w: index l -> 4(w+1) + l
    base = ev["c"]["db"]
    assert base in (4, 8, 12), ev
    assert ev["a"]["db"] == base + 2, ev  # SELECT 2 went to the worker's index 2
    assert ev["a"]["keys"] == 1, ev
    assert ev["b"] == {"test": "b", "left": None, "db": base + 1, "two": 0}, ev
    assert ev["c"]["channel"] == "__keyspace@0__:watched", ev
    keys = _keyspace(port)
    assert 5 not in keys
    assert set(keys) <= {base, base + 1, base + 2}, keys


def test_default_mappings_documented() -> None:
    """The documented default names (no server needed for RabbitMQ; Redis's needs the block)."""
    assert RABBITMQ_CONFIG.default_rewrite_db_name("/", Session(3, 4, "_jw03")) == "dz_jw03"
    assert RABBITMQ_CONFIG.default_rewrite_db_name("shop", Session(3, 4, "_jw03")) == "shop_jw03"
    assert not RABBITMQ_CONFIG.default_should_reroute("shop_jw03")


NEW_CONNECTION_TESTS = """
import os, redis

PORT = int(os.environ["DZ_REDIS_PORT"])

def test_a_leaves_keys_on_new_connections():
    for db in (0, 1):
        r = redis.Redis(port=PORT, db=db)
        r.set("left", "over")
        r.close()

def test_b_a_new_connection_to_the_same_index_is_prepared():
    seen = {}
    for db in (0, 1, 0):
        r = redis.Redis(port=PORT, db=db)
        seen[db] = (r.get("left"), r.client_info()["db"])
        r.set("mine", "b")
        r.close()
    assert seen[0][0] is None and seen[1][0] is None, seen
    assert redis.Redis(port=PORT, db=0).get("mine") == b"b"  # prepared once per test, not again
"""


def test_new_connections_in_a_later_test_are_prepared(tmp_path: Path, private_redis: int) -> None:
    """A new connection (no pool shared between tests) to an index an earlier test used: the
    decision is remembered between tests, `prepare` (truncate) still runs before the later
    test's first command on it, once per test and index."""
    env = {"DZ_REDIS_PORT": str(private_redis), "XDG_CACHE_HOME": str(tmp_path / "c")}
    files = {"conftest.py": POOL_CONFTEST, "test_new.py": NEW_CONNECTION_TESTS}
    rc, out, _ = run_inline_project(tmp_path, files, "--dagz-workers", "1", env=env)
    assert rc == 0, out
    assert "2 passed" in out, out


UNIX_SOCKET_TESTS = """
import os, redis

def test_unix_socket_connection_is_rerouted():
    r = redis.Redis(unix_socket_path=os.environ["DZ_REDIS_SOCKET"])
    assert r.get("sentinel") is None
    r.set("mine", "x")
    info = r.client_info()
    assert info["db"] != "0" and int(info["db"]) > 0, info
"""


def test_unix_socket_connections_are_rerouted(tmp_path: Path) -> None:
    """``Redis(unix_socket_path=…)`` makes a ``UnixDomainSocketConnection`` (no host, no port):
    it is rerouted like a TCP one. Before: the connect hook read ``conn.port`` and the
    connect failed with an AttributeError. Checked on the server: index 0 keeps its sentinel
    and no other key; the test's key is in the worker's index."""
    sock_dir = Path(tempfile.mkdtemp(prefix="dz_rs_"))  # a socket path is at most 107 bytes
    sock = sock_dir / "redis.sock"
    argv = ["redis-server", "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
    argv += ["--dir", str(sock_dir), "--save", "", "--appendonly", "no", "--databases", "16"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        admin = redis.Redis(unix_socket_path=str(sock))
        deadline = time.monotonic() + 10
        while not sock.exists() or not _pings(admin):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        admin.set("sentinel", "base")
        env = {"DZ_REDIS_SOCKET": str(sock), "XDG_CACHE_HOME": str(tmp_path / "c")}
        files = {"conftest.py": POOL_CONFTEST, "test_unix.py": UNIX_SOCKET_TESTS}
        rc, out, _ = run_inline_project(tmp_path, files, "--dagz-workers", "1", env=env)
        assert rc == 0, out
        assert "1 passed" in out, out
        assert admin.keys("*") == [b"sentinel"]
        owners = [
            db for db in range(16) if redis.Redis(unix_socket_path=str(sock), db=db).get("mine")
        ]
        assert len(owners) == 1, owners
        assert owners[0] != 0, owners
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(sock_dir, ignore_errors=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
