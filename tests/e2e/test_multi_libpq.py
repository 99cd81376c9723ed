"""Several libpq copies in one Python process.

psycopg2-binary bundles libpq 17, psycopg-binary libpq 18, psycopg2 from source uses the system
libpq 15. A hook that hands a connect to the wrong copy crashes the process, so every test here
checks the exit status as well as where each connection landed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import APP_JW03, CONNINFO_APP, URI_APP, WORKER3, Launcher, assert_all_landed

LOAD_SYSTEM_LIBPQ_GLOBAL = """
import ctypes
ctypes.CDLL("libpq.so.5", mode=ctypes.RTLD_GLOBAL)
"""

IMPORT_BOTH = """
import psycopg2
import psycopg
assert psycopg.pq.__impl__ == "binary", psycopg.pq.__impl__
"""

# Connect with each driver several times, interleaved, with connections of both copies open at
# once, then use them in a different order than they were made.
CONNECT_INTERLEAVED = f"""
def connect_round(tag):
    opened = []
    for i in range(3):
        opened.append((f"{{tag}}.psycopg2.{{i}}", psycopg2.connect({CONNINFO_APP!r})))
        opened.append((f"{{tag}}.psycopg.{{i}}", psycopg.connect({URI_APP!r})))
    for name, conn in reversed(opened):
        show(name, conn)
    for i, (_, conn) in enumerate(opened):
        if i % 2:
            conn.close()
    for _, conn in opened:
        conn.close()
"""


def expected(*tags: str) -> dict[str, str]:
    return {
        f"{tag}.{driver}.{i}": APP_JW03
        for tag in tags
        for driver in ("psycopg2", "psycopg")
        for i in range(3)
    }


@pytest.mark.parametrize("venv", [".venv", ".venv-src"])
def test_two_drivers_interleaved(
    launcher: Launcher, venv_python: Path, venv_src_python: Path, venv: str
) -> None:
    python = venv_python if venv == ".venv" else venv_src_python
    code = (
        IMPORT_BOTH
        + CONNECT_INTERLEAVED
        + """
connect_round("a")
connect_round("b")
print("copies=" + str(len(libpq_copies())))
"""
    )
    result = launcher.python(python, code, WORKER3)
    # At least two distinct libpq copies were really loaded (the scenario under test).
    assert int(result.kv().get("copies", "0")) >= 2, result.describe()
    landed = {k: v for k, v in result.kv().items() if k != "copies"}
    assert result.rc == 0, result.describe()
    assert landed == expected("a", "b"), result.describe()


@pytest.mark.parametrize("venv", [".venv", ".venv-src"])
def test_system_libpq_rtld_global_before_import(
    launcher: Launcher, venv_python: Path, venv_src_python: Path, venv: str
) -> None:
    python = venv_python if venv == ".venv" else venv_src_python
    code = LOAD_SYSTEM_LIBPQ_GLOBAL + IMPORT_BOTH + CONNECT_INTERLEAVED + 'connect_round("a")\n'
    result = launcher.python(python, code, WORKER3)
    assert_all_landed(result, expected("a"))


@pytest.mark.parametrize("venv", [".venv", ".venv-src"])
def test_system_libpq_rtld_global_after_first_connect(
    launcher: Launcher, venv_python: Path, venv_src_python: Path, venv: str
) -> None:
    python = venv_python if venv == ".venv" else venv_src_python
    code = (
        IMPORT_BOTH
        + CONNECT_INTERLEAVED
        + 'connect_round("before")\n'
        + LOAD_SYSTEM_LIBPQ_GLOBAL
        + 'connect_round("after")\n'
    )
    result = launcher.python(python, code, WORKER3)
    assert_all_landed(result, expected("before", "after"))
