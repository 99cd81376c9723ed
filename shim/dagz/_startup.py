"""Start-up of a dagz run: preloading the shim into xdist workers, re-executing a serial
`pytest --dagz` with it, checking every start-up input once, and reading a worker's start-up
error so the controller can end the run with its one line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from dagz import _shim, envvars


def prepend_preload(path: str) -> None:
    current = os.environ.get("LD_PRELOAD", "")
    parts = [p for p in current.replace(":", " ").split() if p]
    if path not in parts:
        os.environ["LD_PRELOAD"] = " ".join([path, *parts])


def existing_shim() -> Path:
    shim = _shim.shim_path()
    if not shim.exists():
        raise pytest.UsageError(
            f"dagz: libdagz.so not found at {shim}: build it (`make build`) or reinstall dagz"
        )
    return shim


def check_startup_inputs() -> None:
    """The policy file and the worker variables, as every worker will read them."""
    try:
        _shim.policy_check()
        _shim.worker()
    except _shim.ShimError as exc:
        raise pytest.UsageError(one_line(str(exc))) from None


def one_line(text: str) -> str:
    return " ".join(text.split())


def reexec_with_shim(config: pytest.Config) -> None:
    """A serial `pytest --dagz` needs the shim in this very process: start the same command
    again with LD_PRELOAD set (once). Only when this process is that command; inside an
    embedding program (`pytest.main()`), stop with the usage error instead."""
    shim = existing_shim()
    argv = list(getattr(sys, "orig_argv", []))
    is_command = list(config.invocation_params.args) == sys.argv[1:] and len(argv) >= 2
    if os.environ.get(envvars.REEXEC) or not is_command:
        raise pytest.UsageError(
            "dagz: --dagz needs libdagz.so preloaded into the test process, or every test "
            "would use the shared databases. Start the run with `pytest --dagz-workers 1` or "
            "`LD_PRELOAD=$(dagz shim-path) pytest --dagz`."
        )
    env = dict(os.environ)
    env[envvars.REEXEC] = "1"
    parts = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if p]
    env["LD_PRELOAD"] = " ".join([str(shim), *parts])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *argv[1:]], env)


def dagz_startup_error(error: Any) -> str | None:
    """The `dagz:` line of a worker that died raising dagz's usage error while starting."""
    if not error:
        return None
    for line in reversed(str(error).splitlines()):
        for marker in ("UsageError: dagz:", "ShimError: dagz:"):
            if marker in line:
                return line[line.index(marker) + len(marker) - len("dagz:") :].strip()
    return None
