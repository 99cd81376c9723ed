"""Cost of the Redis and RabbitMQ families, side by side in one run (raw figures printed).

Plain and hooked are measured side by side in one run, in alternating rounds, so machine load
hits both alike:

* connect: ``Connection.connect()`` + ``disconnect()`` to a private redis-server, four ways,
  in one process, connect by connect in rotated order (plain connects use a subclass with the
  hooks taken off): plain to index 0 (redis-py sends no ``SELECT``), plain to the worker's
  index k (what an application connecting to that index pays: one ``SELECT`` round trip), and
  hooked to index 0, rerouted to k — later connects in one test (the remembered decision) and
  each connect in a new test (the per-test step too). dagz's own part is hooked - plain-to-k
  (target: at most 20 µs per connection), per round of 100 connects of each way: median,
  quartiles and spread over 30 rounds. Also counted in instructions (callgrind:
  deterministic, whatever the load);
* per command (in one process, the hooks taken off redis-py's class for the plain rounds):
  ``send_command("GET", "k")`` with the socket write replaced by a no-op (packing only), on a
  rerouted connection: the fast path (target: at most 1 µs more);
* prepare on Redis: ``REDIS_CONFIG.truncate`` of an index holding 100 keys (target 1 ms);
* prepare on RabbitMQ: emptying a vhost (delete its 3 queues and 1 exchange) vs deleting and
  recreating it (management API of 127.0.0.1:15672).

Run: ``.venv/bin/python bench/redis_hook_cost.py [--quick]`` (needs redis-server and RabbitMQ).
"""

from __future__ import annotations

import gc
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable

import redis
from dagz import lease
from dagz._state import STATE
from dagz.engines import rabbitmq
from dagz.integ.redis import _MEMO, REDIS_CONFIG, _Route, _route_on_connect
from redis.connection import AbstractConnection

_HOOKED = ("connect_check_health", "on_connect_check_health", "send_command", "pack_commands")


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


def _connect(
    port: int, db: int = 0, cls: type[redis.Connection] = redis.Connection, new_test: bool = False
) -> Callable[[], None]:
    """One connect + disconnect of a new `cls` connection to index `db`; with `new_test`, each
    in a new test (what a test start does to the hooks)."""

    def run() -> None:
        if new_test:
            REDIS_CONFIG.gen += 1
        conn = cls(port=port, db=db)
        conn.connect()
        conn.disconnect()

    return run


def _hooks(on: bool) -> None:
    for name in _HOOKED:
        fn = AbstractConnection.__dict__[name]
        original = getattr(fn, "__wrapped__", fn)
        if on and not hasattr(fn, "__wrapped__"):
            setattr(AbstractConnection, name, _HOOKS[name])
        elif not on and hasattr(fn, "__wrapped__"):
            setattr(AbstractConnection, name, original)


#: The hooks dagz installed on import (`_hooks` takes them off and puts them back).
_HOOKS: dict[str, Callable[..., object]] = {
    name: AbstractConnection.__dict__[name] for name in _HOOKED
}


class _PlainConnection(redis.Connection):
    """redis-py's connection with dagz's hooks taken off in this subclass only: plain and
    hooked connects run in one process, interleaved, with no change to redis-py's own classes
    (taking the hooks off the class and putting them back, as `_side_by_side` does, makes the
    interpreter re-learn the class's attribute lookups each time)."""


for _name in _HOOKED:
    setattr(_PlainConnection, _name, AbstractConnection.__dict__[_name].__wrapped__)


def _connect_ways(port: int, n: int, rounds: int) -> list[dict[str, list[float]]]:
    """Wall and CPU seconds per connect of each way of `_MODES`, one sample per round (the mean
    of its `n` connects of that way). In one process, connect by connect: each step of a round
    runs one connect of every way, the order rotated each step, so noise of the machine and of
    the server falls on all ways alike. Rerouting is configured by the caller."""
    ways = {
        "plain 0": _connect(port, 0, _PlainConnection),
        "plain 6": _connect(port, 6, _PlainConnection),
        "dagz 0->6, same test": _connect(port, 0),
        "dagz 0->6, each a new test": _connect(port, 0, new_test=True),
    }
    assert list(ways) == list(_MODES)
    probe = redis.Connection(port=port, db=0)
    probe.connect()
    assert probe._dagz_r is not None, "not rerouted"
    probe.disconnect()
    order = list(ways.items())
    wall: dict[str, list[float]] = {mode: [] for mode in _MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in _MODES}
    for r in range(rounds + 1):  # round 0: warm-up, uncounted
        w_sum = dict.fromkeys(_MODES, 0.0)
        c_sum = dict.fromkeys(_MODES, 0.0)
        for i in range(n):
            k = i % len(order)
            for mode, fn in order[k:] + order[:k]:
                w0, c0 = time.perf_counter(), time.process_time()
                fn()
                c_sum[mode] += time.process_time() - c0
                w_sum[mode] += time.perf_counter() - w0
        if r:
            for mode in _MODES:
                wall[mode].append(w_sum[mode] / n)
                cpu[mode].append(c_sum[mode] / n)
    REDIS_CONFIG.gen += 1
    return [wall, cpu]


def _hook_work(port: int) -> dict[str, float]:
    """The CPU work the connect hook adds (what runs besides redis-py's own on_connect): the
    decision for a connection object, made anew (the first connect to an index in the
    process), remembered from an earlier test (only the per-test lifecycle step runs), and
    remembered from this test."""
    conn = redis.Connection(port=port, db=0)

    def same_test() -> None:
        d = _route_on_connect(conn)
        assert d is not None, "not rerouted"
        _Route(d.kw, d.new, d.prefix, d.bprefix)  # type: ignore[arg-type]

    def later_test() -> None:
        REDIS_CONFIG.gen += 1  # what a test start does to the hooks
        same_test()

    def anew() -> None:
        _MEMO.clear()
        same_test()

    return {
        "decided anew (first in the process)": min(_time(anew, 2000) for _ in range(10)),
        "first connect to the index in a later test": min(
            _time(later_test, 2000) for _ in range(10)
        ),
        "later connects in the same test": min(_time(same_test, 2000) for _ in range(10)),
    }


def _commands_per_connect(admin: redis.Redis, fn: Callable[[], None], on: bool) -> dict[str, float]:
    """INFO commandstats: the commands (and so round trips) the server got per connect."""
    n = 50
    _hooks(on)
    admin.config_resetstat()
    for _ in range(n):
        fn()
    stats = admin.info("commandstats")
    _hooks(True)
    return {
        k.removeprefix("cmdstat_"): v["calls"] / n
        for k, v in stats.items()
        if not k.startswith(("cmdstat_info", "cmdstat_config"))
    }


def _report_connect(samples: dict[str, list[float]], what: str) -> None:
    names = list(samples)
    print(f"redis connect raw {what} (us per connect, per round; order rotated each round):")
    for name in names:
        print(f"  {name:12} " + " ".join(f"{x * 1e6:6.1f}" for x in samples[name]))
    for name in names:
        xs = samples[name]
        print(
            f"redis connect {what} {name:12} median {statistics.median(xs) * 1e6:7.1f} us   "
            f"spread {min(xs) * 1e6:7.1f}-{max(xs) * 1e6:7.1f} us"
        )
    plain0, plaink = samples["plain 0"], samples["plain 6"]
    for mode in _MODES[2:]:
        own = [h - k for h, k in zip(samples[mode], plaink, strict=True)]
        q1, _, q3 = statistics.quantiles(own, n=4)
        print(
            f"redis connect {what} dagz's own part ({mode} - plain 6, per round) "
            f"median {statistics.median(own) * 1e6:6.1f} us quartiles {q1 * 1e6:6.1f}-"
            f"{q3 * 1e6:6.1f} us spread {min(own) * 1e6:6.1f}-{max(own) * 1e6:6.1f} us "
            "(target <= 20 us)"
        )
    idx = [k - z for k, z in zip(plaink, plain0, strict=True)]
    print(
        f"redis connect {what} the index's SELECT (plain 6 - plain 0, per round) "
        f"median {statistics.median(idx) * 1e6:6.1f} us"
    )


def main() -> None:
    quick = "--quick" in sys.argv[1:]
    print(
        "method: connect: the four ways interleaved connect by connect in one process, rotated "
        "order, median, quartiles and min-max over rounds; command: plain and hooked in one "
        "process, alternating rounds, minimum over rounds"
    )
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
        connects = _connect_ways(port, 20 if quick else 100, 3 if quick else 30)
        conn = redis.Connection(port=port, db=0)
        conn.connect()
        assert conn._dagz_r is not None, "not rerouted"
        conn.send_packed_command = lambda *a, **k: None  # type: ignore[method-assign]
        command = _side_by_side(lambda: conn.send_command("GET", "k"), 5000 if quick else 50_000)

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
        work = _hook_work(port)
        per_connect = {
            "plain 6": _commands_per_connect(client, _connect(port, 6), on=False),
            "dagz 0->6": _commands_per_connect(client, _connect(port, 0), on=True),
        }
        lease.release()  # the children lease worker 1's index themselves
        instructions = _instructions(port, 10 if quick else 50)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    _report_connect(connects[0], "wall")
    _report_connect(connects[1], "cpu")
    _report_instructions(instructions)
    for what, (plain, hooked), target in (("command", command, 1),):
        print(
            f"redis {what:8} plain {plain * 1e6:9.3f} us   hooked {hooked * 1e6:9.3f} us   "
            f"overhead {(hooked - plain) * 1e6:7.3f} us   ratio {hooked / plain:5.3f}   "
            f"(target <= {target} us)"
        )
    for what, secs in work.items():
        print(f"redis hook's own work per connect, {what:42} {secs * 1e6:7.2f} us (min of rounds)")
    for name, calls in per_connect.items():
        text = ", ".join(f"{c} {n:.2f}" for c, n in sorted(calls.items()))
        print(f"redis commands the server got per connect, {name:10}: {text}")
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


_MODES = ("plain 0", "plain 6", "dagz 0->6, same test", "dagz 0->6, each a new test")


def _way(mode: str, port: int) -> Callable[[], None]:
    """One connect of the way `mode` (`_MODES`), its hooks set up for this process."""
    index = 6 if mode == "plain 6" else 0
    if mode.startswith("plain"):
        _hooks(False)
    else:
        STATE.reroute, STATE.current_test = True, "bench"
        REDIS_CONFIG.configure(rewrite_db_name=REDIS_CONFIG.default_rewrite_db_name)
    return _connect(port, index, new_test=mode.endswith("new test"))


def _child(mode: str, n: int, port: int) -> None:
    """`n` connects of one way (under callgrind: `_instructions`), after one uncounted."""
    gc.disable()  # collections at other moments on each side would be counted as noise
    fn = _way(mode, port)
    for _ in range(n + 1):
        fn()


def _instructions(port: int, n: int) -> dict[str, list[float]]:
    """Instructions (callgrind Ir) per connect of each way, in three windows: runs with n, 2n,
    3n and 4n connects (after one uncounted), each next one minus the one before, over n.
    Deterministic for the same code path, unlike time; yet not every run takes the same path
    (seen: one window of the same way 200 k per connect higher than the others when the
    child's output went to a pipe, not to /dev/null), so `_report_instructions` takes the median
    window and prints all three."""
    if shutil.which("valgrind") is None:
        return {}
    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="dz_bench_cg_") as tmp:
        for mode in _MODES:
            totals = []
            for count in (n, 2 * n, 3 * n, 4 * n):
                f = os.path.join(tmp, "cg.out")
                argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={f}"]
                argv += [sys.executable, __file__, "--child", mode, str(count), str(port)]
                env = {**os.environ, "PYTHONHASHSEED": "0"}
                subprocess.run(argv, env=env, check=True, capture_output=True)
                with open(f) as fh:
                    line = next(x for x in fh if x.startswith(("summary:", "totals:")))
                totals.append(int(line.split()[1]))
            out[mode] = [(b - a) / n for a, b in itertools.pairwise(totals)]
    return out


def _report_instructions(instructions: dict[str, list[float]]) -> None:
    for mode, windows in instructions.items():
        text = " ".join(f"{w:10.0f}" for w in windows)
        print(
            f"redis connect instructions (callgrind Ir per connect) {mode:28} "
            f"median {statistics.median(windows):10.0f}   windows {text}"
        )
    if instructions:
        base = statistics.median(instructions["plain 6"])
        for mode in _MODES[2:]:
            print(
                f"redis connect instructions dagz adds ({mode} - plain 6, medians) "
                f"{statistics.median(instructions[mode]) - base:10.0f} Ir"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
