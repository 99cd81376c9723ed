"""Acceptance: bad input to the configuration.

* ``configure()`` without one of its three required arguments raises ``TypeError`` naming it
  (positional and keyword forms, both config objects).
* A ``rewrite_db_name`` that returns a non-string or a 70-character name (over both engines'
  limits) fails each connect with a ``dagz:`` message — through every driver — and the run ends
  normally with failed tests: no hang, no crashed worker, and nothing written to the base
  databases (fails closed, never connects to the un-rerouted name).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import (
    CRASH_MARKERS,
    SampleProject,
    child_env,
    run_process,
    sample_project,
)

from support import VENV_PYTHON

REQUIRED = ("rewrite_db_name", "should_reroute", "prepare")

_CONFIGURE = """
import sys
from dagz.integ.{module} import {config} as C
given = {{
    "rewrite_db_name": C.default_rewrite_db_name,
    "should_reroute": C.default_should_reroute,
    "prepare": None,
}}
style, names = sys.argv[1], [n for n in sys.argv[2].split(",") if n]
try:
    if style == "keyword":
        C.configure(**{{k: given[k] for k in names}})
    else:
        C.configure(*[given[k] for k in names])
except TypeError as exc:
    print("TypeError:", exc)
    sys.exit(0 if not C.configured else 3)
print("no error; configured =", C.configured)
sys.exit(1)
"""

#: (style, arguments given, arguments that the TypeError must name)
CASES = [
    *[("keyword", [a for a in REQUIRED if a != m], [m]) for m in REQUIRED],
    *[("positional", list(REQUIRED[:k]), list(REQUIRED[k:])) for k in range(len(REQUIRED))],
]


@pytest.mark.parametrize(
    ("style", "given", "missing"),
    CASES,
    ids=[f"{style}-without-{'-'.join(missing)}" for style, _, missing in CASES],
)
@pytest.mark.parametrize(
    ("module", "config"),
    [("psycopg", "PG_CONFIG"), ("pymysql", "MYSQL_CONFIG")],
    ids=["pg", "mysql"],
)
def test_configure_missing_required_argument(
    tmp_path: Path, module: str, config: str, style: str, given: list[str], missing: list[str]
) -> None:
    code = _CONFIGURE.format(module=module, config=config)
    argv = [str(VENV_PYTHON), "-c", code, style, ",".join(given)]
    rc, out, err, _ = run_process(argv, child_env(), tmp_path, timeout=60)
    assert rc == 0, f"rc={rc}\n{out}\n{err}"
    assert out.startswith("TypeError:"), out
    for name in missing:
        assert name in out, out


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleProject]:
    with sample_project(tmp_path) as project:
        yield project


@pytest.mark.parametrize("rewrite", ["nonstr", "long"])
def test_broken_rewrite_fails_connects_with_dagz_message(
    sample: SampleProject, rewrite: str
) -> None:
    base = sample.dbs.base
    run = sample.run(
        "--dagz-workers",
        "2",
        files=["test_bad_rewrite.py"],
        env={"DZ_REWRITE": rewrite},
        timeout=120,
    )
    assert run.rc == 1, run.describe()  # tests failed; not an internal error, not a crash
    assert not CRASH_MARKERS.search(run.stdout + run.stderr), run.describe()
    assert len(run.outcomes) == 5, run.describe()
    for outcome in run.outcomes.values():
        assert outcome.outcome in ("failed", "error"), run.describe()
        assert "dagz:" in outcome.message, run.describe()
        detail = "returned int" if rewrite == "nonstr" else "70 bytes"
        assert detail in outcome.message, run.describe()
    assert run.landed() == [], run.describe()
    for family in ("pg", "mysql"):
        assert sample.dbs.count(family, base, "items") == 0
        assert sample.dbs.databases(family) == [base]
