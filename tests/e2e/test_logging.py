"""DAGZ_LOG=debug writes ``dagz[pid]:`` lines to stderr, and never a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import (
    APP,
    APP_JW03,
    CONNINFO_APP,
    PG_HOST,
    PG_PORT,
    PG_USER,
    PSQL_QUERY,
    VENV_PYTHON,
    Launcher,
    Result,
)

SECRET = "s3cr3tpw"  # trust auth accepts any password
ENV = {"DAGZ_WORKER": "3", "DAGZ_LOG": "debug"}
URI_WITH_PASSWORD = f"postgresql://{PG_USER}:{SECRET}@{PG_HOST}:{PG_PORT}/{APP}"
CONNINFO_WITH_PASSWORD = f"{CONNINFO_APP} password={SECRET}"


def assert_logged_without_secret(result: Result, expected_db: str, db_line: str) -> None:
    assert result.rc == 0, result.describe()
    assert db_line == expected_db, result.describe()
    assert SECRET not in result.stderr, result.describe()
    assert SECRET not in result.stdout, result.describe()
    # Debug log lines were written, by the child process itself.
    assert result.log_pids() == {result.pid}, result.describe()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([URI_WITH_PASSWORD], id="uri"),
        pytest.param([CONNINFO_WITH_PASSWORD], id="conninfo"),
        pytest.param(["-d", f"{CONNINFO_WITH_PASSWORD} sslmode=disable"], id="dash-d-conninfo"),
    ],
)
def test_psql_password_never_logged(launcher: Launcher, args: list[str]) -> None:
    result = launcher.run([*PSQL_QUERY, *args], ENV)
    assert_logged_without_secret(result, APP_JW03, result.stdout.strip())


@pytest.mark.parametrize(
    ("mode", "args"),
    [
        pytest.param("connectdb", [CONNINFO_WITH_PASSWORD], id="connectdb"),
        pytest.param(
            "connect_start_params",
            [f"host={PG_HOST}", f"user={PG_USER}", f"password={SECRET}", f"dbname={APP}"],
            id="connect_start_params",
        ),
        pytest.param(
            "connectdb_params", ["-x", f"dbname={URI_WITH_PASSWORD}"], id="params-expand-uri"
        ),
        pytest.param(
            "setdblogin",
            [f"host={PG_HOST}", f"user={PG_USER}", f"password={SECRET}", f"dbname={APP}"],
            id="setdblogin-pwd",
        ),
        pytest.param(
            "setdblogin", [f"dbname={CONNINFO_WITH_PASSWORD}"], id="setdblogin-conninfo-dbname"
        ),
    ],
)
def test_c_password_never_logged(
    launcher: Launcher, pg_entrypoints: Path, mode: str, args: list[str]
) -> None:
    result = launcher.run([str(pg_entrypoints), mode, *args], ENV)
    assert_logged_without_secret(result, APP_JW03, result.stdout.strip())


@pytest.mark.parametrize(
    "connect",
    [
        pytest.param(f"psycopg2.connect({URI_WITH_PASSWORD!r})", id="psycopg2-uri"),
        pytest.param(f"psycopg2.connect({CONNINFO_WITH_PASSWORD!r})", id="psycopg2-conninfo"),
        pytest.param(
            f"psycopg2.connect({CONNINFO_APP!r}, password={SECRET!r})", id="psycopg2-kwarg"
        ),
        pytest.param(f"psycopg.connect({URI_WITH_PASSWORD!r})", id="psycopg-uri"),
        pytest.param(f"psycopg.connect({CONNINFO_APP!r}, password={SECRET!r})", id="psycopg-kwarg"),
    ],
)
def test_python_password_never_logged(launcher: Launcher, connect: str) -> None:
    result = launcher.python(VENV_PYTHON, f"import psycopg, psycopg2\nshow('db', {connect})\n", ENV)
    assert_logged_without_secret(result, APP_JW03, result.kv().get("db", ""))
