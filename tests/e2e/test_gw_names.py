"""Issue 14: a child of a test (psql, a Python subprocess: it decides with the shim's policy, not
with dagz's Python callback) never suffixes a name pytest-django already made per worker
(``…_gwN``) again — on any worker, with the default policy and with a policy file whose
allow-list takes every name. Server side: the child prints the database the server put it in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagz.engines import mysql as _mysql
from dagz.engines import postgres as _pg
from db_fixtures import MY, PG, pg_databases, run_sql  # noqa: F401 - fixture used by name

from support import CONNINFO_BASE, PSQL_QUERY, VENV_PYTHON, Launcher, assert_landed, unique_name

_MYSQL_CHILD = """
import MySQLdb
conn = MySQLdb.connect(host="127.0.0.1", user="root", passwd="", db={db!r})
cur = conn.cursor()
cur.execute("SELECT DATABASE()")
print(cur.fetchone()[0])
"""
_PSYCOPG_CHILD = """
import psycopg
with psycopg.connect({conninfo!r}) as conn:
    print(conn.execute("SELECT current_database()").fetchone()[0])
"""


@pytest.fixture(scope="module")
def gw_name() -> Iterator[str]:
    """``<prefix>_dj_<hex>_gw1`` on both servers (as pytest-django's worker gw1 makes it)."""
    name = f"{unique_name('dj')}_gw1"
    run_sql(_pg, "postgres", PG, f'CREATE DATABASE "{name}"')
    run_sql(_mysql, None, MY, f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        run_sql(_pg, "postgres", PG, f'DROP DATABASE IF EXISTS "{name}"')
        run_sql(_mysql, None, MY, f"DROP DATABASE IF EXISTS `{name}`")


def _envs(policy_file: Path) -> list[dict[str, str]]:
    policy_file.write_text('[postgres]\nreroute = ["*"]\n[mysql]\nreroute = ["*"]\n')
    return [
        {"DAGZ_WORKER": "3", "PYTEST_XDIST_WORKER": "gw3", "PYTEST_XDIST_WORKER_COUNT": "4"},
        {"DAGZ_WORKER": "1", "PYTEST_XDIST_WORKER": "gw1", "DAGZ_POLICY": str(policy_file)},
    ]


@pytest.mark.parametrize("client", ["psql", "psycopg", "MySQLdb"])
def test_child_keeps_a_gw_name(
    launcher: Launcher, policy_file: Path, gw_name: str, client: str
) -> None:
    for env in _envs(policy_file):
        if client == "psql":
            result = launcher.run([*PSQL_QUERY, f"{CONNINFO_BASE} dbname={gw_name}"], env)
        elif client == "psycopg":
            code = _PSYCOPG_CHILD.format(conninfo=f"{CONNINFO_BASE} dbname={gw_name}")
            result = launcher.python(VENV_PYTHON, code, env)
        else:
            result = launcher.python(VENV_PYTHON, _MYSQL_CHILD.format(db=gw_name), env)
        assert_landed(result, gw_name)
