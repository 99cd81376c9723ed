"""psql (linked directly against the system libpq) lands in the per-worker database."""

from __future__ import annotations

import pytest

from support import (
    CONNINFO_MYAPP,
    PG_HOST,
    PG_USER,
    PSQL_QUERY,
    URI_MYAPP,
    WORKER3,
    Launcher,
    assert_landed,
)


@pytest.mark.parametrize(
    ("args", "extra_env"),
    [
        pytest.param(["-h", PG_HOST, "-U", PG_USER, "-d", "myapp"], {}, id="dash-d"),
        pytest.param([URI_MYAPP], {}, id="uri"),
        pytest.param(["-d", URI_MYAPP], {}, id="dash-d-uri"),
        pytest.param(["-h", PG_HOST, "-U", PG_USER], {"PGDATABASE": "myapp"}, id="pgdatabase"),
        pytest.param([CONNINFO_MYAPP], {}, id="conninfo"),
        pytest.param([f"host={PG_HOST} user={PG_USER} dbname=myapp"], {}, id="conninfo-no-port"),
    ],
)
def test_psql_is_rerouted(launcher: Launcher, args: list[str], extra_env: dict[str, str]) -> None:
    result = launcher.run([*PSQL_QUERY, *args], {**WORKER3, **extra_env})
    assert_landed(result, "myapp_jw03")


@pytest.mark.parametrize("system_db", ["postgres", "template1"])
def test_psql_system_database_is_not_rerouted(launcher: Launcher, system_db: str) -> None:
    result = launcher.run([*PSQL_QUERY, "-h", PG_HOST, "-U", PG_USER, "-d", system_db], WORKER3)
    assert_landed(result, system_db)


def test_psql_without_preload_is_not_rerouted(launcher: Launcher) -> None:
    """Control: the same command without LD_PRELOAD lands in the shared database."""
    result = launcher.run(
        [*PSQL_QUERY, "-h", PG_HOST, "-U", PG_USER, "-d", "myapp"], WORKER3, preload=False
    )
    assert_landed(result, "myapp")
    assert "dagz" not in result.stderr, result.describe()
