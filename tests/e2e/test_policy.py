"""Policy (DAGZ_POLICY TOML, DAGZ_DISABLE) and fail-closed behaviour.

A refused connect must fail with a ``dagz:`` message in the driver's own error text and never
fall back to the shared database: the child is watched in pg_stat_activity (by a unique
application_name) for as long as it runs, and a session that did connect would stay there for
HOLD_S seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import (
    APP,
    APP_JW03,
    APP_W3,
    CLIENTS,
    CONNINFO_APP,
    CONNINFO_BASE,
    RUN_PREFIX,
    Launcher,
    connect_with,
    landed_in,
    refusal_text,
)


def check_refused(launcher: Launcher, client: str, conninfo: str, env: dict[str, str]) -> str:
    """Connect, assert it was refused without any session, return the driver's error text."""
    result = connect_with(launcher, client, conninfo, env, hold=True)
    assert result.rc != 0, result.describe()
    assert landed_in(result, client) is None, result.describe()
    assert APP not in result.sightings, f"a session sat in {APP}\n{result.describe()}"
    assert result.sightings == (), f"a session was opened\n{result.describe()}"
    assert launcher.admin.sessions_in(APP, result.env["PGAPPNAME"]) == 0
    text = refusal_text(result, client)
    assert "dagz:" in text, result.describe()
    return text


# --- fail closed -------------------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("content", "line"),
    [
        pytest.param('[postgres\ntemplate = "{db}_x{worker}"\n', 1, id="syntax-error"),
        pytest.param('[postgres]\ntemplate = "{db}_jw{worker:02}\n', 2, id="unterminated-string"),
        pytest.param('[postgres]\nenabled = "yes"\n', 2, id="wrong-type"),
    ],
)
def test_broken_policy_fails_closed(
    launcher: Launcher, policy_file: Path, client: str, content: str, line: int
) -> None:
    policy_file.write_text(content)
    env = {"DAGZ_WORKER": "3", "DAGZ_POLICY": str(policy_file)}
    text = check_refused(launcher, client, CONNINFO_APP, env)
    assert str(policy_file) in text, text
    assert f"line {line}" in text, text


@pytest.mark.parametrize("client", CLIENTS)
def test_template_over_63_bytes_fails_closed(
    launcher: Launcher, policy_file: Path, client: str
) -> None:
    template = "{db}_" + "x" * 60 + "_jw{worker:02}"  # <APP>_xxx…_jw03 > 63 bytes
    policy_file.write_text(f'[postgres]\ntemplate = "{template}"\n')
    env = {"DAGZ_WORKER": "3", "DAGZ_POLICY": str(policy_file)}
    check_refused(launcher, client, CONNINFO_APP, env)


@pytest.mark.parametrize("client", CLIENTS)
def test_default_name_over_63_bytes_fails_closed(launcher: Launcher, client: str) -> None:
    long_db = "d" * 59  # + "_jw03" = 64 bytes: PostgreSQL would silently truncate it to 63
    check_refused(launcher, client, f"{CONNINFO_BASE} dbname={long_db}", {"DAGZ_WORKER": "3"})


@pytest.mark.parametrize("client", CLIENTS)
def test_bad_worker_number_fails_closed(launcher: Launcher, client: str) -> None:
    check_refused(launcher, client, CONNINFO_APP, {"DAGZ_WORKER": "abc"})


# --- policy decisions --------------------------------------------------------------------------

POLICIES = [
    # (policy file content or None, extra env, expected database)
    pytest.param(None, {"DAGZ_DISABLE": "1"}, APP, id="DAGZ_DISABLE=1"),
    pytest.param(f'[postgres]\nskip = ["{APP}"]\n', {}, APP, id="skip-exact"),
    pytest.param(f'[postgres]\nskip = ["{RUN_PREFIX}_*"]\n', {}, APP, id="skip-glob"),
    pytest.param('[postgres]\ntemplate = "{db}_w{worker}"\n', {}, APP_W3, id="template"),
    pytest.param("disable = true\n", {}, APP, id="top-level-disable"),
    pytest.param("[postgres]\nenabled = false\n", {}, APP, id="postgres-disabled"),
    pytest.param("[mysql]\nenabled = false\n", {}, APP_JW03, id="mysql-disabled-only"),
    pytest.param('[postgres]\nreroute = ["other*"]\n', {}, APP, id="reroute-no-match"),
    pytest.param(f'[postgres]\nreroute = ["{RUN_PREFIX}_*"]\n', {}, APP_JW03, id="reroute-match"),
    pytest.param("", {}, APP_JW03, id="empty-policy-file"),
]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(("content", "extra_env", "expected"), POLICIES)
def test_policy_decides(
    launcher: Launcher,
    policy_file: Path,
    client: str,
    content: str | None,
    extra_env: dict[str, str],
    expected: str,
) -> None:
    env = {"DAGZ_WORKER": "3", **extra_env}
    if content is not None:
        policy_file.write_text(content)
        env["DAGZ_POLICY"] = str(policy_file)
    result = connect_with(launcher, client, CONNINFO_APP, env)
    assert landed_in(result, client) == expected, result.describe()


@pytest.mark.parametrize("client", CLIENTS)
def test_already_per_worker_name_is_not_suffixed_again(launcher: Launcher, client: str) -> None:
    result = connect_with(
        launcher, client, f"{CONNINFO_BASE} dbname={APP_JW03}", {"DAGZ_WORKER": "3"}
    )
    assert landed_in(result, client) == APP_JW03, result.describe()
