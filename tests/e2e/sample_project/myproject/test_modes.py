"""Where tests land under ``single_worker_disable`` / ``main_worker_bypass``: each test records
its worker and the database every configured family's drivers reach; the e2e suite judges.

``@pytest.mark.dagz_main_worker`` tests must all run on worker 0 (gw0).
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from dzsample import DB, FAMILIES, HOLD_S, MYSQL_DRIVERS, PG_DRIVERS, PG_KW, connect, land, record


def _land_everywhere(marked: bool) -> None:
    drivers = [
        *(PG_DRIVERS if "pg" in FAMILIES else ()),
        *(MYSQL_DRIVERS if "mysql" in FAMILIES else ()),
    ]
    for driver in drivers:
        conn = connect(driver)
        try:
            land(driver, conn, marked=marked)
        finally:
            conn.close()
    time.sleep(HOLD_S)


@pytest.mark.dagz_main_worker
@pytest.mark.parametrize("i", range(6))
def test_marked(i: int) -> None:
    _land_everywhere(marked=True)


@pytest.mark.parametrize("i", range(12))
def test_unmarked(i: int) -> None:
    _land_everywhere(marked=False)


def test_psql_child() -> None:
    """A psql started by the test lands where the test's own connects land."""
    if "pg" not in FAMILIES:
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    out = subprocess.run(
        [
            "psql",
            "-X",
            "-w",
            "-At",
            "-h",
            PG_KW["host"],
            "-U",
            PG_KW["user"],
            "-d",
            DB,
            "-c",
            "SELECT current_database()",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    record("landed", driver="psql", family="pg", db=out.stdout.strip(), marked=False, child=True)
