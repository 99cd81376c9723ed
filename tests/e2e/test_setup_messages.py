"""Issue 10, "set-up on a fresh machine": `make` owns the system packages and no phase is silent.

* `scripts/deps.sh` (`make deps`) run by a user who cannot install: one line naming the missing
  packages and the command that installs them, exit 1 (a package that does not exist stands in
  for one that is not installed);
* every phase of `make build` and of `scripts/demo.sh --clean` prints a line when it starts and
  one with its elapsed time when it ends.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

from support import REPO_ROOT, unique_name


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _one_line_refusal(command: list[str]) -> str:
    """`command` run by a user who cannot install or start anything (root would: then as
    nobody): it fails with exit code 1 and one line on stderr, returned."""
    if os.geteuid() == 0:
        assert shutil.which("runuser"), "runuser (util-linux) is needed to run as nobody"
        command = ["runuser", "-u", "nobody", "--", *command]
    proc = _run(command)
    assert proc.returncode == 1, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_deps_names_missing_packages_and_the_command() -> None:
    line = _one_line_refusal(["env", "DEPS_EXTRA=dz-no-such-package", "bash", "scripts/deps.sh"])
    lines = [line]
    assert "dz-no-such-package" in lines[0], lines
    assert "sudo apt-get install -y dz-no-such-package" in lines[0], lines


def _phases(output: str) -> tuple[list[str], list[str]]:
    started = re.findall(r"^=== (.+?) \.\.\.$", output, re.M)
    ended = re.findall(r"^=== (.+?): done in [0-9.]+s$", output, re.M)
    return started, ended


def test_make_build_phases_say_start_and_elapsed() -> None:
    proc = _run(["make", "--no-print-directory", "build"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    started, ended = _phases(proc.stdout)
    assert started, proc.stdout
    assert started == ended, proc.stdout


def test_demo_clean_phases_say_start_and_elapsed(
    tmp_path: Path, private_redis: int, vhost_prefix: str
) -> None:
    """`--clean` with every name of the example set to this run's own: databases (never
    `shop`), a private redis-server, a vhost of this run (never `/`). Before, it dropped the
    worker vhosts of `/` (`dz_jw00`…) that a `make demo` had left, and the worker indexes of
    the machine's Redis index 0."""
    proc = _run(
        ["scripts/demo.sh", "--clean"],
        DEMO_OUT=str(tmp_path / "demo"),
        SHOP_PG_DATABASE=unique_name("shop"),
        SHOP_MYSQL_DATABASE=unique_name("audit"),
        SHOP_REDIS_URL=f"redis://127.0.0.1:{private_redis}/0",
        SHOP_AMQP_URL=f"amqp://guest:guest@127.0.0.1:5672/{vhost_prefix}",
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    starts = re.findall(r"^=== demo: (?!done in)(.+)$", output, re.M)
    ends = re.findall(r"^=== demo: done in [0-9.]+s: (.+)$", output, re.M)
    assert starts, output
    assert starts == ends, output
    assert f"RabbitMQ (vhost {vhost_prefix})" in output, output  # what it cleaned: its own
    assert "(vhost /)" not in output, output


def test_servers_name_what_is_down_and_the_command() -> None:
    """A fresh machine has RabbitMQ's management API off (dagz creates worker vhosts through
    it): `scripts/servers.sh` (`make servers`, which `make e2e`, `make demo` and `make bench`
    need) run by a user who cannot fix it says so in one line with the command; as root it
    would enable the plugin. A closed port stands in for the API that is off."""
    command = ["env", f"SERVERS_RABBITMQ_API=http://127.0.0.1:{_closed_port()}"]
    line = _one_line_refusal([*command, "bash", "scripts/servers.sh"])
    lines = [line]
    assert "RabbitMQ management API" in lines[0], lines
    assert "rabbitmq-plugins enable rabbitmq_management" in lines[0], lines
    assert _run(["bash", "scripts/servers.sh"]).returncode == 0  # the real servers all answer


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
