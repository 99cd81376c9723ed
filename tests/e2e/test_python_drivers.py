"""Python C-extension drivers (each with its own libpq copy) land in the per-worker database."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support import (
    APP,
    APP_JW03,
    CONNINFO_APP,
    PG_HOST,
    PG_PORT,
    PG_USER,
    SYSTEM_LIBPQ,
    URI_APP,
    WORKER3,
    Launcher,
    assert_all_landed,
)

KW = f"host={PG_HOST!r}, port={PG_PORT}, user={PG_USER!r}"

# psycopg2-binary must really be the wheel with its bundled libpq, and psycopg must really use its
# C "binary" implementation: otherwise these tests would not exercise the copies they claim to.
ASSERT_PSYCOPG2_BINARY = """
import psycopg2
assert any("psycopg2_binary.libs" in p for p in libpq_copies()), libpq_copies()
"""
ASSERT_PSYCOPG_BINARY = """
import psycopg
assert psycopg.pq.__impl__ == "binary", psycopg.pq.__impl__
"""

VENV_CASES = [
    pytest.param(
        ASSERT_PSYCOPG2_BINARY + f"show('db', psycopg2.connect({CONNINFO_APP!r}))",
        id="psycopg2-dsn",
    ),
    pytest.param(
        ASSERT_PSYCOPG2_BINARY + f"show('db', psycopg2.connect({KW}, dbname={APP!r}))",
        id="psycopg2-kwargs-dbname",
    ),
    pytest.param(
        ASSERT_PSYCOPG2_BINARY + f"show('db', psycopg2.connect({KW}, database={APP!r}))",
        id="psycopg2-kwargs-database",
    ),
    pytest.param(
        ASSERT_PSYCOPG2_BINARY + f"show('db', psycopg2.connect({URI_APP!r}))",
        id="psycopg2-uri",
    ),
    pytest.param(
        ASSERT_PSYCOPG_BINARY + f"show('db', psycopg.connect({CONNINFO_APP!r}))",
        id="psycopg-conninfo",
    ),
    pytest.param(
        ASSERT_PSYCOPG_BINARY + f"show('db', psycopg.connect({URI_APP!r}))",
        id="psycopg-uri",
    ),
    pytest.param(
        ASSERT_PSYCOPG_BINARY + f"show('db', psycopg.connect({KW}, dbname={APP!r}))",
        id="psycopg-kwargs",
    ),
    pytest.param(
        ASSERT_PSYCOPG_BINARY
        + f"""
import asyncio

async def main():
    conn = await psycopg.AsyncConnection.connect({CONNINFO_APP!r})
    async with conn:
        cur = await conn.execute("SELECT current_database()")
        print("db=" + (await cur.fetchone())[0], flush=True)

asyncio.run(main())
""",
        id="psycopg-async",
    ),
    pytest.param(
        ASSERT_PSYCOPG2_BINARY
        + f"""
import sqlalchemy as sa
engine = sa.create_engine("postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{APP}")
with engine.connect() as conn:
    print("db=" + conn.execute(sa.text("SELECT current_database()")).scalar_one(), flush=True)
""",
        id="sqlalchemy-psycopg2",
    ),
    pytest.param(
        ASSERT_PSYCOPG_BINARY
        + f"""
import sqlalchemy as sa
engine = sa.create_engine("postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{APP}")
with engine.connect() as conn:
    print("db=" + conn.execute(sa.text("SELECT current_database()")).scalar_one(), flush=True)
""",
        id="sqlalchemy-psycopg",
    ),
]


@pytest.mark.parametrize("code", VENV_CASES)
def test_venv_driver_is_rerouted(launcher: Launcher, venv_python: Path, code: str) -> None:
    result = launcher.python(venv_python, code, WORKER3)
    assert_all_landed(result, {"db": APP_JW03})


ASSERT_PSYCOPG2_SOURCE = f"""
import psycopg2
assert libpq_copies() == [os.path.realpath({str(SYSTEM_LIBPQ)!r})], libpq_copies()
"""


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(
            ASSERT_PSYCOPG2_SOURCE + f"show('db', psycopg2.connect({CONNINFO_APP!r}))",
            id="dsn",
        ),
        pytest.param(
            ASSERT_PSYCOPG2_SOURCE + f"show('db', psycopg2.connect({KW}, dbname={APP!r}))",
            id="kwargs",
        ),
        pytest.param(
            ASSERT_PSYCOPG2_SOURCE + f"show('db', psycopg2.connect({URI_APP!r}))",
            id="uri",
        ),
    ],
)
def test_venv_src_psycopg2_is_rerouted(
    launcher: Launcher, venv_src_python: Path, code: str
) -> None:
    result = launcher.python(venv_src_python, code, WORKER3)
    assert_all_landed(result, {"db": APP_JW03})


def test_venv_src_psycopg2_links_system_libpq(venv_src_python: Path) -> None:
    """.venv-src's psycopg2 is a local source build whose _psycopg links the system libpq."""
    probe = subprocess.run(
        [
            str(venv_src_python),
            "-c",
            "import importlib.metadata as md, psycopg2._psycopg as m; print(m.__file__);"
            "d = md.distribution('psycopg2'); print(d.read_text('WHEEL') or '')",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    ext_path, _, wheel_meta = probe.stdout.partition("\n")
    # A wheel built here from the sdist carries the plain platform tag, not manylinux.
    assert "Tag: cp311-cp311-linux_x86_64" in wheel_meta, wheel_meta
    assert not (Path(ext_path).parent.parent / "psycopg2_binary.libs").exists()
    ldd = subprocess.run(["ldd", ext_path], capture_output=True, text=True, check=True).stdout
    targets = [
        line.split("=>")[1].split("(")[0].strip()
        for line in ldd.splitlines()
        if "=>" in line and line.strip().startswith("libpq")
    ]
    assert len(targets) == 1, ldd
    assert os.path.realpath(targets[0]) == os.path.realpath(SYSTEM_LIBPQ), ldd
