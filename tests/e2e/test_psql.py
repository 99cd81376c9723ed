"""psql (linked directly against the system libpq) lands in the per-worker database."""

from __future__ import annotations

import pytest

from support import (
    APP,
    APP_JW03,
    CONNINFO_APP,
    PG_HOST,
    PG_USER,
    PSQL_QUERY,
    URI_APP,
    WORKER3,
    Launcher,
    assert_landed,
)


@pytest.mark.parametrize(
    ("args", "extra_env"),
    [
        pytest.param(["-h", PG_HOST, "-U", PG_USER, "-d", APP], {}, id="dash-d"),
        pytest.param([URI_APP], {}, id="uri"),
        pytest.param(["-d", URI_APP], {}, id="dash-d-uri"),
        pytest.param(["-h", PG_HOST, "-U", PG_USER], {"PGDATABASE": APP}, id="pgdatabase"),
        pytest.param([CONNINFO_APP], {}, id="conninfo"),
        pytest.param([f"host={PG_HOST} user={PG_USER} dbname={APP}"], {}, id="conninfo-no-port"),
    ],
)
def test_psql_is_rerouted(launcher: Launcher, args: list[str], extra_env: dict[str, str]) -> None:
    result = launcher.run([*PSQL_QUERY, *args], {**WORKER3, **extra_env})
    assert_landed(result, APP_JW03)


@pytest.mark.parametrize("system_db", ["postgres", "template1"])
def test_psql_system_database_is_not_rerouted(launcher: Launcher, system_db: str) -> None:
    result = launcher.run([*PSQL_QUERY, "-h", PG_HOST, "-U", PG_USER, "-d", system_db], WORKER3)
    assert_landed(result, system_db)


def test_psql_without_preload_is_not_rerouted(launcher: Launcher) -> None:
    """Control: the same command without LD_PRELOAD lands in the shared database."""
    result = launcher.run(
        [*PSQL_QUERY, "-h", PG_HOST, "-U", PG_USER, "-d", APP], WORKER3, preload=False
    )
    assert_landed(result, APP)
    assert "dagz" not in result.stderr, result.describe()
