"""Issue 12: cluster-wide objects (roles, prepared-transaction ids, users) collide across workers
whatever database each uses. `@pytest.mark.dagz_node_mutex` runs a test while no other test runs
on any worker; `assert_node_mutex`/`assert_main_worker` and their `_at(target)` forms fail a test
that reaches a guarded call without its marker.

The project below runs on 2 workers. Its marked tests create and drop one role (a server-wide
object; the name is this run's own) and record their time span; the other tests record theirs;
no span of another test may overlap a marked test's.
"""

from __future__ import annotations

from pathlib import Path

from plugin_support import run_inline_project

from support import unique_name

CONFTEST = """
import dagz
import helpers

dagz.assert_node_mutex_at("helpers.make_role")
dagz.assert_main_worker_at((helpers, "main_only"))
"""

HELPERS = """
import os, psycopg

def make_role():
    role = os.environ["DZ_ROLE"]
    kw = {"host": "127.0.0.1", "user": "postgres", "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**kw) as c:
        c.execute(f'CREATE ROLE "{role}"')
        c.execute(f'DROP ROLE "{role}"')

def main_only():
    return 1
"""

TESTS = """
import json, os, time
import pytest
import dagz, helpers


def span(kind, seconds):
    start = time.time()
    time.sleep(seconds)
    with open(os.environ["DZ_OUT"], "a") as fh:
        fh.write(json.dumps({"kind": kind, "start": start, "end": time.time()}) + "\\n")


@pytest.mark.dagz_node_mutex
@pytest.mark.parametrize("n", range(3))
def test_mutex(n):
    dagz.assert_node_mutex()
    helpers.make_role()
    span("mutex", 0.4)


@pytest.mark.parametrize("n", range(10))
def test_plain(n):
    span("plain", 0.15)


def test_guarded_call_without_marker_fails_even_if_caught():
    try:
        helpers.make_role()
    except Exception:
        pass


def test_assert_node_mutex_without_marker():
    dagz.assert_node_mutex()


@pytest.mark.dagz_main_worker
def test_main_only_marked():
    dagz.assert_main_worker()
    assert helpers.main_only() == 1


def test_main_only_unmarked():
    helpers.main_only()
"""


def test_node_mutex_and_marker_guards(tmp_path: Path) -> None:
    rc, report, spans = run_inline_project(
        tmp_path,
        {"conftest.py": CONFTEST, "helpers.py": HELPERS, "test_cluster.py": TESTS},
        "--dagz-workers",
        "2",
        "-rA",
        env={"DZ_ROLE": unique_name("role")},
    )
    failed = {
        line.split()[1].split("::")[1] for line in report.splitlines() if line.startswith("FAILED ")
    }
    assert failed == {
        "test_guarded_call_without_marker_fails_even_if_caught",
        "test_assert_node_mutex_without_marker",
        "test_main_only_unmarked",
    }, report
    assert rc == 1, report
    assert "needs @pytest.mark.dagz_node_mutex" in report, report
    assert "needs @pytest.mark.dagz_main_worker" in report, report
    mutex = [s for s in spans if s["kind"] == "mutex"]
    assert len(mutex) == 3, spans
    assert len(spans) == 13, spans
    for m in mutex:
        for other in spans:
            if other is m:
                continue
            overlap = min(m["end"], other["end"]) - max(m["start"], other["start"])
            assert overlap <= 0, (m, other)
