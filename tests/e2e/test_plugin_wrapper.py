"""Acceptance: a project's own driver wrapper calling ``PG_CONFIG.maybe_reroute_uri(uri)`` (and
``maybe_reroute(name)``) gets the rerouted URI and the same lifecycle as a connect the shim sees:
``worker_init`` once per worker, before the first rerouted URI is handed out, and ``prepare``
once per test. Only the wrapper reroutes in this run: it connects inside ``bypass()``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import (
    SampleProject,
    assert_passed,
    landing_problems,
    lifecycle_problems,
    sample_project,
)


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


def test_wrapper_gets_rerouted_uri_and_lifecycle(sample: SampleProject) -> None:
    base = sample.dbs.base
    run = sample.run("--dagz-workers", "2", files=["test_wrapper.py"], families="pg")
    assert_passed(run, at_least=8)
    assert landing_problems(run, base) == [], run.describe()
    assert lifecycle_problems(run, base, ("pg",)) == [], run.describe()

    wrapped = [e for e in run.landed() if str(e.get("via", "")).startswith("wrapper")]
    assert len(wrapped) == len(run.landed()) >= 8, run.describe()
    # worker_init ran in each worker, inside a wrapper test, before that worker's first
    # wrapper connect got its URI (the clone exists when the connect happens)
    inits = run.of("worker_init")
    assert sorted(e["worker"] for e in inits) == ["gw0", "gw1"], run.describe()
    for init in inits:
        first = next(
            i
            for i, e in enumerate(run.events)
            if e["event"] == "landed" and e["pid"] == init["pid"]
        )
        assert run.events.index(init) < first, run.describe()
    # prepare: one per test that got a rerouted URI (twice in one test: still one)
    prepared = sorted(e["test"] for e in run.of("prepare"))
    rerouted_tests = sorted(
        {e["test"] for e in wrapped if e["db"] != base and e.get("rerouted") is not False}
    )
    assert prepared == rerouted_tests, run.describe()
    assert "test_wrapper.py::test_wrapper_twice_in_one_test" in prepared
    for quiet in ("test_wrapper_inside_bypass", "test_wrapper_no_connection"):
        assert f"test_wrapper.py::{quiet}" not in prepared
