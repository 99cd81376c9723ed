"""The dagz_* C ABI, driven through ctypes from a preloaded Python child: the thread-local
bypass, the decision callback (reroute, refuse, no opinion, re-entrancy) and the rule functions.
Landing is checked from the server (current_database())."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_policy import check_refused

from support import APP, APP_JW03, APP_JW05, CONNINFO_APP, VENV_PYTHON, WORKER3, Launcher

ABI = f"""
import ctypes
import psycopg2
lib = ctypes.CDLL(None)
assert lib.dagz_abi_version() == 1
CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t)
lib.dagz_set_decision_callback.argtypes = [CB]
def reply(out, out_len, text):
    data = text.encode()[: out_len - 1]
    ctypes.memmove(out, data + b"\\0", len(data) + 1)
def connect():
    return psycopg2.connect({CONNINFO_APP!r})
"""


def run(launcher: Launcher, code: str) -> dict[str, str]:
    result = launcher.python(VENV_PYTHON, ABI + code, WORKER3)
    assert result.rc == 0, result.describe()
    return result.kv()


def test_bypass_is_nestable_and_per_thread(launcher: Launcher) -> None:
    code = """
import threading
print("enter1=%d" % lib.dagz_bypass_enter())
print("enter2=%d" % lib.dagz_bypass_enter())
show("inside", connect())
seen = {}
t = threading.Thread(target=lambda: seen.setdefault("db", db_of(connect())))
t.start(); t.join()
print("other_thread=" + seen["db"])
print("exit1=%d" % lib.dagz_bypass_exit())
show("still_inside", connect())
print("exit2=%d" % lib.dagz_bypass_exit())
print("exit_unbalanced=%d" % lib.dagz_bypass_exit())
print("depth=%d" % lib.dagz_bypass_depth())
show("outside", connect())
"""
    assert run(launcher, code) == {
        "enter1": "1",
        "enter2": "2",
        "inside": APP,
        "other_thread": APP_JW03,
        "exit1": "1",
        "still_inside": APP,
        "exit2": "0",
        "exit_unbalanced": "-1",
        "depth": "0",
        "outside": APP_JW03,
    }


def test_callback_reroutes_keeps_and_defers(launcher: Launcher) -> None:
    code = f"""
calls = []
answers = {{"reroute": (1, {APP_JW05!r}), "keep": (0, ""), "default": (2, "")}}
mode = ["reroute"]
@CB
def cb(engine, name, out, out_len):
    calls.append((engine, name.decode()))
    code, text = answers[mode[0]]
    reply(out, out_len, text)
    return code
lib.dagz_set_decision_callback(cb)
for m in ("reroute", "keep", "default"):
    mode[0] = m
    show(m, connect())
print("calls=" + repr(calls))
lib.dagz_set_decision_callback(CB())
show("unregistered", connect())
"""
    out = run(launcher, code)
    assert out == {
        "reroute": APP_JW05,
        "keep": APP,
        "default": APP_JW03,
        "calls": repr([(1, APP)] * 3),
        "unregistered": APP_JW03,
    }


#: Registers a decision callback that fails every connect, before the child's own code runs
#: (a ``sitecustomize`` on the child's PYTHONPATH), so that `check_refused` can drive an
#: ordinary driver connect and watch the server while it is refused.
FAILING_CALLBACK = """
import ctypes
lib = ctypes.CDLL(None)
CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t)
@CB
def _dagz_e2e_failing_callback(engine, name, out, out_len):
    data = ("dagz: prepare exploded for " + name.decode()).encode()[: out_len - 1]
    ctypes.memmove(out, data + b"\\0", len(data) + 1)
    return -1
lib.dagz_set_decision_callback(_dagz_e2e_failing_callback)
"""


def test_callback_error_fails_the_connect_closed(launcher: Launcher, tmp_path: Path) -> None:
    """A callback error refuses the connect with its text, and no session of the child is ever
    seen on the server (in the base database or anywhere else) while it runs."""
    (tmp_path / "sitecustomize.py").write_text(FAILING_CALLBACK)
    env = {**WORKER3, "PYTHONPATH": str(tmp_path)}
    text = check_refused(launcher, "psycopg2", CONNINFO_APP, env)
    assert f"dagz: prepare exploded for {APP}" in text, text


def test_callback_reentrancy_guard(launcher: Launcher) -> None:
    """A connect made inside the callback is not rerouted and does not call it again."""
    code = """
calls = []
inner = {}
@CB
def cb(engine, name, out, out_len):
    calls.append(name.decode())
    if "db" not in inner:
        inner["db"] = db_of(connect())
    return 2
lib.dagz_set_decision_callback(cb)
show("outer", connect())
print("inner=" + inner["db"])
print("calls=%d" % len(calls))
"""
    assert run(launcher, code) == {"outer": APP_JW03, "inner": APP, "calls": "1"}


@pytest.mark.parametrize(
    ("fn", "args", "expected"),
    [
        ("dagz_policy_render", "1, b'myapp', 7", "myapp_jw07"),
        ("dagz_policy_suffix", "1, 12", "_jw12"),
        (
            "dagz_url_set_db",
            "b'postgresql+psycopg2://u:pw@h1:5432,h2/myapp?x=1', b'myapp_jw03'",
            "postgresql+psycopg2://u:pw@h1:5432,h2/myapp_jw03?x=1",
        ),
        ("dagz_url_get_db", "b'mysql+pymysql://root@127.0.0.1/my%20db'", "my db"),
        (
            "dagz_pg_rewrite_conninfo",
            '''b"host=h dbname='myapp' password='x y'"''',
            "host=h dbname='myapp_jw03' password='x y'",
        ),
    ],
)
def test_rule_functions(launcher: Launcher, fn: str, args: str, expected: str) -> None:
    code = f"""
buf = ctypes.create_string_buffer(512)
n = lib.{fn}({args}, buf, 512)
print("n=%d" % n)
print("out=" + buf.value.decode())
"""
    out = run(launcher, code)
    assert out == {"n": str(len(expected.encode())), "out": expected}


def test_string_results_report_the_full_length_when_truncated(launcher: Launcher) -> None:
    code = """
buf = ctypes.create_string_buffer(4)
n = lib.dagz_policy_render(1, b"myapp", 3, buf, 4)
print("n=%d" % n)
print("out=" + buf.value.decode())
err = ctypes.create_string_buffer(256)
print("bad_engine=%d" % lib.dagz_policy_render(9, b"myapp", 3, err, 256))
print("msg=" + err.value.decode())
"""
    assert run(launcher, code) == {
        "n": "10",
        "out": "mya",
        "bad_engine": "-1",
        "msg": "dagz: unknown engine code 9",
    }


def test_eight_threads_odd_ones_bypassed(launcher: Launcher) -> None:
    code = """
import threading
barrier = threading.Barrier(8)
landed = {}
def work(i):
    if i % 2:
        lib.dagz_bypass_enter()
    barrier.wait()  # all eight connect at the same time
    landed[i] = db_of(connect())
    if i % 2:
        lib.dagz_bypass_exit()
threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
for i in range(8):
    print("t%d=%s" % (i, landed[i]))
"""
    for _ in range(3):
        out = run(launcher, code)
        assert out == {f"t{i}": (APP if i % 2 else APP_JW03) for i in range(8)}


def test_psql_child_of_python_lands_in_the_same_worker_database(launcher: Launcher) -> None:
    """The child inherits LD_PRELOAD and the worker variables, even ones set after start."""
    code = f"""
import subprocess
os.environ["PYTEST_XDIST_WORKER"] = "gw5"
show("parent", connect())
child = subprocess.run(
    ["psql", "-X", "-w", "-At", "-h", "127.0.0.1", "-U", "postgres", "-d", {APP!r},
     "-c", "SELECT current_database()"],
    capture_output=True, text=True, check=True,
)
print("child=" + child.stdout.strip())
"""
    result = launcher.python(VENV_PYTHON, ABI + code, {})
    assert result.rc == 0, result.describe()
    assert result.kv() == {"parent": APP_JW05, "child": APP_JW05}, result.describe()
