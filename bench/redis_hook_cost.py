"""Cost of the Redis and RabbitMQ families, side by side in one run (raw figures printed).

Plain and hooked are measured in the same process, in alternating rounds (the hooks are taken
off redis-py's connection class for the plain rounds), so machine load hits both alike:

* connect: ``Connection.connect()`` + ``disconnect()`` to a private redis-server, the hooked
  one rerouted to a worker index (target: at most 20 µs more per connection);
* per command: ``send_command("GET", "k")`` with the socket write replaced by a no-op (packing
  only), on a rerouted connection: the fast path (target: at most 1 µs more);
* prepare on Redis: ``REDIS_CONFIG.truncate`` of an index holding 100 keys (target 1 ms);
* prepare on RabbitMQ: emptying a vhost (delete its 3 queues and 1 exchange) vs deleting and
  recreating it (management API of 127.0.0.1:15672).

Run: ``.venv/bin/python bench/redis_hook_cost.py`` (needs redis-server and RabbitMQ).
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable

import redis
from dagz._state import STATE
from dagz.engines import rabbitmq
from dagz.integ.redis import REDIS_CONFIG, _resolve
from redis.connection import AbstractConnection

_HOOKED = ("on_connect_check_health", "send_command", "pack_commands")


def _free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def _time(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def _side_by_side(fn: Callable[[], object], n: int, rounds: int = 15) -> tuple[float, float]:
    """(plain, hooked) seconds per call: the minimum over alternating rounds."""
    hooked = {name: AbstractConnection.__dict__[name] for name in _HOOKED}
    plain = {name: fn_.__wrapped__ for name, fn_ in hooked.items()}
    best_plain, best_hooked = float("inf"), float("inf")
    for _ in range(rounds):
        for name, f in plain.items():
            setattr(AbstractConnection, name, f)
        best_plain = min(best_plain, _time(fn, n))
        for name, f in hooked.items():
            setattr(AbstractConnection, name, f)
        best_hooked = min(best_hooked, _time(fn, n))
    return best_plain, best_hooked


def _connect(port: int) -> Callable[[], None]:
    def run() -> None:
        conn = redis.Connection(port=port, db=0)
        conn.connect()
        conn.disconnect()

    return run


def main() -> None:
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="dz_bench_redis_")
    os.environ["XDG_CACHE_HOME"] = tmp
    os.environ["DAGZ_WORKER"], os.environ["DAGZ_WORKER_COUNT"] = "1", "4"
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp]
    server = subprocess.Popen([*argv, "--save", ""], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        STATE.reroute, STATE.current_test = True, "bench"
        REDIS_CONFIG.configure(rewrite_db_name=REDIS_CONFIG.default_rewrite_db_name)
        client = redis.Redis(port=port)
        assert client.client_info()["db"] == 6, "not rerouted"  # blocks of 3: worker 1 -> 6
        connect = _side_by_side(_connect(port), 200)
        conn = redis.Connection(port=port, db=0)
        conn.connect()
        assert conn._dagz_r is not None, "not rerouted"
        conn.send_packed_command = lambda *a, **k: None  # type: ignore[method-assign]
        command = _side_by_side(lambda: conn.send_command("GET", "k"), 50_000)

        def truncate_after_fill(n: int) -> float:
            total = 0.0
            for _ in range(n):
                client.mset({f"k{i}": i for i in range(100)})
                t0 = time.perf_counter()
                REDIS_CONFIG.truncate("6")
                total += time.perf_counter() - t0
            return total / n

        prepare = min(truncate_after_fill(100) for _ in range(5))
        # the hook's own added work per connect: the decision and lifecycle checks of resolve
        kw = {"host": "127.0.0.1", "port": port}
        resolve = min(_time(lambda: _resolve(kw, 0), 2000) for _ in range(10))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    for what, (plain, hooked), target in (
        ("connect", connect, 20),
        ("command", command, 1),
    ):
        print(
            f"redis {what:8} plain {plain * 1e6:9.3f} us   hooked {hooked * 1e6:9.3f} us   "
            f"overhead {(hooked - plain) * 1e6:7.3f} us   ratio {hooked / plain:5.3f}   "
            f"(target <= {target} us)"
        )
    print(f"redis resolve  per connect (hook's added work) {resolve * 1e6:8.2f} us")
    print(f"redis prepare  truncate of 100 keys {prepare * 1e6:8.1f} us (target <= 1000 us)")
    _rabbit()


def _rabbit() -> None:
    kw = {"host": "127.0.0.1", "user": "guest", "password": "guest"}
    vhost = f"dz_bench_{uuid.uuid4().hex[:8]}"
    api = rabbitmq._Api(kw)
    q = rabbitmq._q

    def populate() -> None:
        for i in range(3):
            api.call("PUT", f"/api/queues/{q(vhost)}/dz_q{i}", {"durable": False})
        api.call("PUT", f"/api/exchanges/{q(vhost)}/dz_ex", {"type": "direct"})

    rabbitmq.ensure_vhost(kw, vhost, "/", 0)
    empty, recreate = [], []
    try:
        for _ in range(10):
            populate()
            t0 = time.perf_counter()
            rabbitmq.empty(kw, vhost)
            empty.append(time.perf_counter() - t0)
            populate()
            t0 = time.perf_counter()
            rabbitmq.recreate(kw, vhost, "/", 0)
            recreate.append(time.perf_counter() - t0)
    finally:
        rabbitmq.drop(vhost, **kw)
    e, r = statistics.median(empty), statistics.median(recreate)
    print(
        f"rabbitmq prepare  delete 3 queues + 1 exchange {e * 1e3:7.1f} ms   "
        f"delete+recreate vhost {r * 1e3:7.1f} ms   ratio recreate/empty {r / e:4.2f}"
    )


if __name__ == "__main__":
    main()
