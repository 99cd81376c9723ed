"""Each libpq connect entry point, called from a C program linked with -lpq."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import (
    APP,
    APP_JW03,
    CONNINFO_APP,
    CONNINFO_BASE,
    PG_HOST,
    PG_PORT,
    PG_USER,
    URI_APP,
    WORKER3,
    Launcher,
    assert_landed,
)

KW_BASE = [f"host={PG_HOST}", f"port={PG_PORT}", f"user={PG_USER}"]
DBNAME_APP = f"dbname={APP}"

CASES = [
    # PQconnectdb
    pytest.param("connectdb", [CONNINFO_APP], {}, id="connectdb-conninfo"),
    pytest.param("connectdb", [URI_APP], {}, id="connectdb-uri"),
    pytest.param("connectdb", [CONNINFO_BASE], {"PGDATABASE": APP}, id="connectdb-pgdatabase"),
    # PQconnectdbParams
    pytest.param("connectdb_params", [*KW_BASE, DBNAME_APP], {}, id="connectdb_params"),
    pytest.param(
        "connectdb_params", ["-x", *KW_BASE, DBNAME_APP], {}, id="connectdb_params-expand-plain"
    ),
    pytest.param(
        "connectdb_params", ["-x", f"dbname={URI_APP}"], {}, id="connectdb_params-expand-uri"
    ),
    pytest.param(
        "connectdb_params",
        ["-x", f"dbname={CONNINFO_APP}"],
        {},
        id="connectdb_params-expand-conninfo",
    ),
    pytest.param("connectdb_params", KW_BASE, {"PGDATABASE": APP}, id="connectdb_params-pgdb"),
    # PQconnectStart (+ PQconnectPoll)
    pytest.param("connect_start", [CONNINFO_APP], {}, id="connect_start-conninfo"),
    pytest.param("connect_start", [URI_APP], {}, id="connect_start-uri"),
    # PQconnectStartParams (+ PQconnectPoll)
    pytest.param("connect_start_params", [*KW_BASE, DBNAME_APP], {}, id="connect_start_params"),
    pytest.param(
        "connect_start_params",
        ["-x", f"dbname={URI_APP}"],
        {},
        id="connect_start_params-expand-uri",
    ),
    pytest.param(
        "connect_start_params",
        ["-x", *KW_BASE, f"dbname={CONNINFO_APP}"],
        {},
        id="connect_start_params-expand-conninfo",
    ),
    # PQsetdbLogin
    pytest.param("setdblogin", [*KW_BASE, DBNAME_APP], {}, id="setdblogin"),
    pytest.param("setdblogin", KW_BASE, {"PGDATABASE": APP}, id="setdblogin-null-pgdatabase"),
    pytest.param("setdblogin", [f"dbname={CONNINFO_APP}"], {}, id="setdblogin-conninfo-dbname"),
    pytest.param("setdblogin", [f"dbname={URI_APP}"], {}, id="setdblogin-uri-dbname"),
]


@pytest.mark.parametrize(("mode", "args", "extra_env"), CASES)
def test_entrypoint_is_rerouted(
    launcher: Launcher, pg_entrypoints: Path, mode: str, args: list[str], extra_env: dict[str, str]
) -> None:
    result = launcher.run([str(pg_entrypoints), mode, *args], {**WORKER3, **extra_env})
    assert_landed(result, APP_JW03)


@pytest.mark.parametrize(("mode", "args", "extra_env"), CASES)
def test_entrypoint_control_without_preload(
    launcher: Launcher, pg_entrypoints: Path, mode: str, args: list[str], extra_env: dict[str, str]
) -> None:
    """Control: the C program itself reaches the base database in every case without the shim."""
    result = launcher.run(
        [str(pg_entrypoints), mode, *args], {**WORKER3, **extra_env}, preload=False
    )
    assert_landed(result, APP)
