"""RabbitMQ family (`RABBITMQ_CONFIG`, the same object in dagz.integ.pika/.kombu/.aio_pika),
proved through the management API (which vhost holds which queue, which vhosts exist).

The inner runs name their worker vhosts ``<run prefix>_<8 hex>_jwNN`` (a `rewrite_db_name` of
their own) so that nothing a user could own is touched; every vhost of that prefix is deleted
at the end, also when the test fails. The default mapping (``/`` -> ``dz_jwNN``) is checked by
test_redis.py::test_default_mappings_documented.
"""

from __future__ import annotations

from pathlib import Path

from plugin_support import run_inline_project
from service_support import mq_api as _api

CONFTEST = """
import os
from dagz.integ.kombu import RABBITMQ_CONFIG

def rewrite(vhost, session):
    return os.environ["DZ_PREFIX"] + session.suffix

RABBITMQ_CONFIG.configure(rewrite, RABBITMQ_CONFIG.default_should_reroute, RABBITMQ_CONFIG.truncate)
"""

#: The management API for the inner runs' tests (``api("/api/queues")``).
INNER_API = """
def api(path):
    import base64, json, urllib.request
    auth = "Basic " + base64.b64encode(b"guest:guest").decode()
    req = urllib.request.Request("http://127.0.0.1:15672" + path, headers={"Authorization": auth})
    return json.loads(urllib.request.urlopen(req, timeout=15).read())
"""

TESTS = (
    """
import base64, json, os, time, urllib.request
from pathlib import Path
import kombu, pika, pytest

def barrier(name, n=4, timeout=60):
    d = Path(os.environ["DZ_OUT"]).parent / name
    d.mkdir(exist_ok=True)
    (d / os.environ["PYTEST_XDIST_WORKER"]).touch()
    deadline = time.monotonic() + timeout
    while len(list(d.iterdir())) < n and time.monotonic() < deadline:
        time.sleep(0.02)

"""
    + INNER_API
    + """
@pytest.mark.parametrize("i", range(4))
def test_tasks_stay_with_their_worker(i):
    me = os.environ["PYTEST_XDIST_WORKER"]
    queue = os.environ["DZ_QUEUE"]
    got = []
    with kombu.Connection("amqp://guest@127.0.0.1//") as conn:
        q = conn.SimpleQueue(queue)
        barrier("declared")
        for n in range(5):
            q.put({"worker": me, "n": n})
        barrier("published")
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and len(got) < 10:
            try:
                m = q.get(timeout=0.3)
            except q.Empty:
                continue
            got.append(m.payload)
            m.ack()
        vhost = conn.connection.virtual_host
        q.close()
    # pika, through URLParameters, lands in the same worker vhost
    pc = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    pc.channel().queue_declare(queue + "_pika")
    pc.close()
    hosts = {q["vhost"] for q in api("/api/queues?columns=name,vhost") if q["name"] == queue}
    with open(os.environ["DZ_OUT"], "a") as fh:
        event = {"worker": me, "got": got, "vhost": vhost, "hosts": sorted(hosts)}
        fh.write(json.dumps(event) + "\\n")
"""
)


def test_kombu_tasks_consumed_by_the_worker_that_published_them(
    tmp_path: Path, vhost_prefix: str
) -> None:
    """4 workers declare the same queue on ``amqp://guest@127.0.0.1//`` and publish 5 tasks
    each at the same time: each consumes exactly its own five, from its own vhost; ``/`` never
    gets the queue."""
    queue = f"{vhost_prefix}_tasks"
    env = {"DZ_PREFIX": vhost_prefix, "DZ_QUEUE": queue}
    rc, out, events = run_inline_project(
        tmp_path,
        {"conftest.py": CONFTEST, "test_mq.py": TESTS},
        "--dagz-workers",
        "4",
        env=env,
        timeout=180,
    )
    assert rc == 0, out
    by_worker = {e["worker"]: e for e in events}
    assert sorted(by_worker) == ["gw0", "gw1", "gw2", "gw3"], out
    for worker, e in by_worker.items():
        mine = f"{vhost_prefix}_jw{int(worker[2:]):02}"
        assert e["vhost"] == mine, e
        assert e["got"] == [{"worker": worker, "n": n} for n in range(5)], e
        assert mine in e["hosts"], e
    vhosts = {v["name"]: v for v in _api("GET", "/api/vhosts")}
    for w in range(4):
        made = vhosts[f"{vhost_prefix}_jw{w:02}"]
        assert "dagz" in made["tags"], made
    default_queues = {q["name"] for q in _api("GET", "/api/queues/%2F?columns=name")}
    assert queue not in default_queues
    assert f"{queue}_pika" not in default_queues


AIO_TESTS = """
import asyncio, os, json
import aio_pika

def test_aio_pika_and_prepare():
    async def main():
        c = await aio_pika.connect("amqp://guest:guest@127.0.0.1/")
        ch = await c.channel()
        q = await ch.declare_queue(os.environ["DZ_QUEUE"])
        await ch.default_exchange.publish(aio_pika.Message(b"x"), routing_key=q.name)
        vhost = c.transport.connection.vhost
        await c.close()
        return vhost
    vhost = asyncio.run(main())
    with open(os.environ["DZ_OUT"], "a") as fh:
        fh.write(json.dumps({"vhost": vhost}) + "\\n")

def test_second_test_starts_empty():
    async def main():
        c = await aio_pika.connect("amqp://guest:guest@127.0.0.1/")
        ch = await c.channel()
        try:
            await ch.declare_queue(os.environ["DZ_QUEUE"], passive=True)
            found = True
        except aio_pika.exceptions.ChannelClosed:
            found = False
        await c.close()
        return found
    assert asyncio.run(main()) is False  # prepare (truncate) deleted the first test's queue
"""


def test_aio_pika_rerouted_and_prepared(tmp_path: Path, vhost_prefix: str) -> None:
    queue = f"{vhost_prefix}_aq"
    env = {"DZ_PREFIX": vhost_prefix, "DZ_QUEUE": queue}
    files = {"conftest.py": CONFTEST.replace("dagz.integ.kombu", "dagz.integ.aio_pika")}
    files["test_aio.py"] = AIO_TESTS
    rc, out, events = run_inline_project(tmp_path, files, "--dagz-workers", "1", env=env)
    assert rc == 0, out
    assert events == [{"vhost": f"{vhost_prefix}_jw00"}], out


def test_missing_management_plugin_fails_closed(tmp_path: Path, vhost_prefix: str) -> None:
    """A management API that cannot be reached, on a host where rabbitmqctl cannot help: the
    connect fails with a dagz: message naming the plugin; no vhost is made."""
    conftest = CONFTEST + (
        "\nRABBITMQ_CONFIG.management_url = 'http://127.0.0.1:9'\n"
        "import shutil\nshutil.which = lambda *a, **k: None\n"
    )
    tests = """
import kombu, pytest
def test_refused():
    with pytest.raises(Exception, match="rabbitmq_management") as info:
        kombu.Connection("amqp://guest@127.0.0.1//").connect()
    assert str(info.value).startswith("dagz:")
"""
    files = {"conftest.py": conftest, "test_refused.py": tests}
    env = {"DZ_PREFIX": vhost_prefix, "DZ_QUEUE": "unused"}
    rc, out, _ = run_inline_project(tmp_path, files, "--dagz-workers", "1", env=env)
    assert rc == 0, out
    assert not [v for v in _api("GET", "/api/vhosts") if v["name"].startswith(vhost_prefix)]


KEPT_TESTS = """
import asyncio, json, os
import aio_pika, amqp, kombu, pika

Q = os.environ["DZ_QUEUE"]
KEPT = {}
LOOP = asyncio.new_event_loop()


def emit(**event):
    with open(os.environ["DZ_OUT"], "a") as fh:
        fh.write(json.dumps(event) + "\\n")


async def aio_open():
    conn = await aio_pika.connect("amqp://guest:guest@127.0.0.1/")
    return conn, await conn.channel()


def test_a_fill_over_connections_kept_for_the_next_test():
    k = kombu.Connection("amqp://guest@127.0.0.1//")
    k.connect()
    kc = k.default_channel
    kc.queue_declare(Q + "_k")
    kc.basic_publish(amqp.Message("x"), routing_key=Q + "_k")
    p = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    pc = p.channel()
    pc.queue_declare(Q + "_p")
    pc.basic_publish("", Q + "_p", b"x")
    ac, ach = LOOP.run_until_complete(aio_open())
    LOOP.run_until_complete(ach.declare_queue(Q + "_a"))
    LOOP.run_until_complete(
        ach.default_exchange.publish(aio_pika.Message(b"x"), routing_key=Q + "_a")
    )
    KEPT.update(k=k, kc=kc, p=p, pc=pc, ac=ac, ach=ach)
    a = LOOP.run_until_complete(ach.declare_queue(Q + "_a", passive=True))
    emit(test="a", kombu=kc.queue_declare(Q + "_k", passive=True).message_count,
         pika=pc.queue_declare(Q + "_p", passive=True).method.message_count,
         aio=a.declaration_result.message_count, vhost=k.connection.virtual_host)


def test_b_kept_connections_are_prepared_before_first_use():
    kc, pc, ach = KEPT["kc"], KEPT["pc"], KEPT["ach"]
    a = LOOP.run_until_complete(ach.declare_queue(Q + "_a"))
    emit(test="b", kombu=kc.queue_declare(Q + "_k").message_count,
         pika=pc.queue_declare(Q + "_p").method.message_count,
         aio=a.declaration_result.message_count)
    KEPT["k"].release()
    KEPT["p"].close()
    LOOP.run_until_complete(KEPT["ac"].close())
"""


def test_prepare_runs_over_connections_kept_from_an_earlier_test(
    tmp_path: Path, vhost_prefix: str
) -> None:
    """A kombu/py-amqp, a pika and an aio-pika connection made by one test and used again by
    the next: `prepare` (RABBITMQ_CONFIG.truncate) empties the worker vhost before the second
    test's first AMQP method, as it does over a new connection (the management API confirms
    the messages were there)."""
    queue = f"{vhost_prefix}_kq"
    files = {"conftest.py": CONFTEST, "test_kept.py": KEPT_TESTS}
    env = {"DZ_PREFIX": vhost_prefix, "DZ_QUEUE": queue}
    rc, out, events = run_inline_project(tmp_path, files, "--dagz-workers", "1", env=env)
    assert rc == 0, out
    ev = {e.pop("test"): e for e in events}
    assert ev["a"] == {"kombu": 1, "pika": 1, "aio": 1, "vhost": f"{vhost_prefix}_jw00"}, ev
    assert ev["b"] == {"kombu": 0, "pika": 0, "aio": 0}, ev
