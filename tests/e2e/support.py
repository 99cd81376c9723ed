"""Shared helpers of the dagz end-to-end suite (imported by conftest.py and the tests).

Every test runs a real client (psql, a C program linked with -lpq, a Python driver) as a child
process with ``LD_PRELOAD=<libdagz.so>`` and proves where the connection landed from the server
side: the child prints ``SELECT current_database()``, and failures are checked against
``pg_stat_activity`` from an admin connection of this (un-preloaded) test process.

The suite is xdist-safe: the databases are (re)created once per run under a file lock, children
get an explicit environment (never the runner's own ``PYTEST_XDIST_*``/``DAGZ_*``/``PG*``
variables), and checks on ``pg_stat_activity`` are keyed by a per-child ``application_name``.

Names on the servers: everything the suite creates (databases on both servers, their ``_jwNN``
copies, roles) is named ``<run prefix>_…``, the run prefix being ``dz_`` plus 6 random hex digits,
made once per run and shared by its xdist workers through ``$DAGZ_E2E_RUN`` (``make e2e`` sets it,
so that scripts/leftovers.py knows it; a plain ``pytest`` run makes one). No test uses a name a
user could own. Fixtures drop what they made, and the run's last step (``pytest_sessionfinish`` of
the controller, conftest.py) drops every database and role of the run prefix on both servers,
also after failures.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import subprocess
import tempfile
import textwrap
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pymysql
import pytest
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SHIM = REPO_ROOT / "target" / "release" / "libdagz.so"
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
VENV_SRC_PYTHON = REPO_ROOT / ".venv-src" / "bin" / "python"
C_SOURCE = REPO_ROOT / "tests" / "c" / "pg_entrypoints.c"
SYSTEM_LIBPQ = Path("/usr/lib/x86_64-linux-gnu/libpq.so.5")

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
ADMIN_CONNINFO = f"host={PG_HOST} port={PG_PORT} user={PG_USER} dbname=postgres"

#: The variable that carries the run prefix to the xdist workers (and from `make e2e`).
RUN_ENV = "DAGZ_E2E_RUN"
#: What a run prefix looks like: ``dz_`` plus 6 hex digits.
RUN_PREFIX_RE = re.compile(r"dz_[0-9a-f]{6}")


def _run_prefix() -> str:
    """This run's prefix: from ``$DAGZ_E2E_RUN``, else made here and exported, so that the xdist
    workers (started later by this controller) inherit it. A worker that finds no variable (its
    controller never imported this module) derives it from xdist's run id, the same in all."""
    value = os.environ.get(RUN_ENV, "")
    if not value:
        run_uid = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")
        if run_uid and os.environ.get("PYTEST_XDIST_WORKER"):
            value = "dz_" + hashlib.sha256(run_uid.encode()).hexdigest()[:6]
        else:
            value = "dz_" + secrets.token_hex(3)
        os.environ[RUN_ENV] = value
    return value


#: ``dz_<6 hex>``: the first part of every name this run creates on a server (checked in
#: conftest.py's pytest_configure).
RUN_PREFIX = _run_prefix()


def unique_name(tag: str) -> str:
    """A fresh name of this run: ``<run prefix>_<tag>_<8 hex>`` (keep ``tag`` short: PostgreSQL
    names end at 63 bytes, MariaDB's at 64 characters, and worker copies add ``_jwNN``)."""
    return f"{RUN_PREFIX}_{tag}_{uuid.uuid4().hex[:8]}"


#: The shared base database of the tests that only connect (psql, C programs, drivers); the
#: others are the per-worker targets they land in.
APP = f"{RUN_PREFIX}_app"
APP_JW03 = f"{APP}_jw03"
APP_JW05 = f"{APP}_jw05"
APP_W3 = f"{APP}_w3"
#: Databases the suite needs on PostgreSQL (created once per run, dropped at its end).
TEST_DATABASES = (APP, APP_JW03, APP_JW05, APP_W3)

MY_HOST = "127.0.0.1"
MY_PORT = 3306
MY_USER = "root"

CHILD_TIMEOUT_S = 60.0

# Variables of the runner that must never leak into a child: the runner itself may be an xdist
# worker (PYTEST_XDIST_WORKER=gwN), and PG*/DAGZ_* would change what the child connects to.
_STRIPPED_PREFIXES = ("DAGZ_", "PYTEST_", "PG", "LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH")


def stripped_env(prefixes: tuple[str, ...] = _STRIPPED_PREFIXES) -> dict[str, str]:
    """The runner's environment without the variables that start with `prefixes`, plus what
    every child of the suite gets: libpq's connect timeout, no bytecode files, and its
    machine-local lease files under the suite's TMPDIR (else they made /tmp/dagz-leases)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PGCONNECT_TIMEOUT"] = "10"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["DAGZ_LEASE_DIR"] = os.path.join(tempfile.gettempdir(), "dagz-leases")
    return env


_LOG_LINE = re.compile(r"^dagz\[(\d+)\]:", re.MULTILINE)

#: Prepended to every Python snippet run in a child.
PY_PRELUDE = textwrap.dedent(
    '''
    import os
    import sys

    def db_of(conn):
        cur = conn.cursor()
        cur.execute("SELECT current_database()")
        name = cur.fetchone()[0]
        cur.close()
        return name

    def show(tag, conn):
        print(f"{tag}={db_of(conn)}", flush=True)

    def libpq_copies():
        """Paths of every libpq mapped into this process."""
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "/" in line}
        return sorted(p for p in paths if os.path.basename(p).startswith("libpq"))

    def connect_failed(tag, exc):
        """Report a refused connect: the driver's own error text, on one stdout line."""
        print(f"{tag}.error=" + " ".join(str(exc).split()), flush=True)
    '''
)


@dataclass(frozen=True)
class Result:
    """Outcome of one child process."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    rc: int
    stdout: str
    stderr: str
    pid: int
    #: Databases in which a session of this child (by application_name) was seen, if watched.
    sightings: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:  # keep pytest's assertion rewriting short; describe() has it all
        return f"Result(rc={self.rc}, pid={self.pid}, argv0={self.argv[0]!r})"

    def describe(self) -> str:
        interesting = {
            k: v
            for k, v in sorted(self.env.items())
            if k.startswith(("DAGZ_", "PYTEST_", "PG", "LD_PRELOAD"))
        }
        argv = list(self.argv)
        if len(argv) >= 3 and argv[1] == "-c":
            argv[2] = "<python snippet>"
        return (
            f"argv={argv}\nenv={interesting}\nrc={self.rc} pid={self.pid}"
            f" sightings={list(self.sightings)}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )

    def kv(self) -> dict[str, str]:
        """``key=value`` lines of stdout (split at the first ``=``)."""
        out: dict[str, str] = {}
        for line in self.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip()
        return out

    def stderr_without_log(self) -> str:
        """stderr minus the shim's own ``dagz[pid]:`` log lines."""
        return "\n".join(line for line in self.stderr.splitlines() if not _LOG_LINE.match(line))

    def log_pids(self) -> set[int]:
        return {int(m) for m in _LOG_LINE.findall(self.stderr)}


class Admin:
    """An un-preloaded admin connection (autocommit) to the ``postgres`` database."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(ADMIN_CONNINFO, autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def recreate_databases(self, names: Sequence[str]) -> None:
        for name in names:
            ident = sql.Identifier(name)
            self.conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            self.conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))

    def databases_of_app(self, application_name: str) -> list[str]:
        """Databases of the live sessions that carry this application_name."""
        rows = self.conn.execute(
            "SELECT coalesce(datname, '') FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
        return [r[0] for r in rows]

    def sessions_in(self, datname: str, application_name: str) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            (datname, application_name),
        ).fetchone()
        assert row is not None
        return int(row[0])


def _like(prefix: str) -> str:
    """``prefix`` as a LIKE pattern (same escaping on both servers: backslash), plus ``%``."""
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


def drop_everything_named(base: str) -> list[str]:
    """Drops ``base`` and every database and role whose name starts with ``base_`` on both
    servers (``WITH (FORCE)`` on PostgreSQL); returns what it dropped as ``pg:name`` /
    ``mysql:name`` / ``pg-role:name`` / ``mysql-user:name``. Only for names this run made."""
    if not RUN_PREFIX_RE.match(base):
        raise ValueError(f"refusing to drop names outside the suite's dz_ namespace: {base!r}")
    like = _like(base + "_")
    dropped: list[str] = []
    with psycopg.connect(ADMIN_CONNINFO, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s ORDER BY 1",
            (base, like),
        ).fetchall()
        for (name,) in rows:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            dropped.append(f"pg:{name}")
        roles = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = %s OR rolname LIKE %s ORDER BY 1",
            (base, like),
        ).fetchall()
        for (name,) in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            dropped.append(f"pg-role:{name}")
    my = pymysql.connect(
        host=MY_HOST, port=MY_PORT, user=MY_USER, password="", autocommit=True, connect_timeout=10
    )
    try:
        with my.cursor() as cur:
            cur.execute(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
                " WHERE SCHEMA_NAME = %s OR SCHEMA_NAME LIKE %s ORDER BY 1",
                (base, like),
            )
            for (name,) in cur.fetchall():
                cur.execute("DROP DATABASE IF EXISTS `{}`".format(name.replace("`", "``")))
                dropped.append(f"mysql:{name}")
            cur.execute(
                "SELECT User, Host FROM mysql.user WHERE User = %s OR User LIKE %s ORDER BY 1",
                (base, like),
            )
            for user, host in cur.fetchall():
                cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
                dropped.append(f"mysql-user:{user}@{host}")
    finally:
        my.close()
    return dropped


class Launcher:
    """Runs children with or without the shim preloaded, in a controlled environment."""

    def __init__(self, shim: Path, admin: Admin) -> None:
        self.shim = shim
        self.admin = admin

    def env(
        self, extra: Mapping[str, str] | None = None, *, preload: bool = True
    ) -> dict[str, str]:
        env = stripped_env()
        if preload:
            env["LD_PRELOAD"] = str(self.shim)
        env.update(extra or {})
        return env

    def run(
        self,
        argv: Sequence[str],
        extra_env: Mapping[str, str] | None = None,
        *,
        preload: bool = True,
        watch: bool = False,
        timeout: float = CHILD_TIMEOUT_S,
    ) -> Result:
        """Run ``argv``; with ``watch`` the child gets a unique PGAPPNAME and every database a
        session of it sits in is recorded (polled while it runs, and once after it exits)."""
        env = self.env(extra_env, preload=preload)
        token = ""
        if watch:
            token = f"dagz-e2e-{uuid.uuid4().hex[:16]}"
            env["PGAPPNAME"] = token
        seen: list[str] = []
        proc = subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            if watch:
                deadline = time.monotonic() + timeout
                while proc.poll() is None:
                    seen.extend(self.admin.databases_of_app(token))
                    if time.monotonic() > deadline:
                        raise subprocess.TimeoutExpired(list(argv), timeout)
                    time.sleep(0.01)
                seen.extend(self.admin.databases_of_app(token))
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            pytest.fail(
                f"child timed out after {timeout}s: {list(argv)[:3]}\n"
                f"--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            )
        return Result(
            argv=tuple(argv),
            env=env,
            rc=proc.returncode,
            stdout=stdout,
            stderr=stderr,
            pid=proc.pid,
            sightings=tuple(dict.fromkeys(seen)),
        )

    def python(
        self,
        python: Path,
        code: str,
        extra_env: Mapping[str, str] | None = None,
        *,
        preload: bool = True,
        watch: bool = False,
    ) -> Result:
        snippet = PY_PRELUDE + "\n" + textwrap.dedent(code)
        return self.run([str(python), "-c", snippet], extra_env, preload=preload, watch=watch)


# --- connection strings and commands shared by the tests -----------------------------------

WORKER3: Mapping[str, str] = {"DAGZ_WORKER": "3"}
CONNINFO_BASE = f"host={PG_HOST} port={PG_PORT} user={PG_USER}"
CONNINFO_APP = f"{CONNINFO_BASE} dbname={APP}"
URI_APP = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{APP}"
#: psql, no psqlrc, never prompts, unaligned tuples only.
PSQL = ["psql", "-X", "-w", "-At", "-v", "ON_ERROR_STOP=1"]
PSQL_QUERY = [*PSQL, "-c", "SELECT current_database()"]
#: For watched runs: a session that did connect stays visible in pg_stat_activity for a while.
HOLD_S = 1.5
PSQL_HOLD = [*PSQL, "-c", f"SELECT current_database(), pg_sleep({HOLD_S})"]


def assert_landed(result: Result, expected: str) -> None:
    """The child exited 0 and printed exactly ``expected`` as its current_database()."""
    assert result.rc == 0, result.describe()
    assert result.stdout.strip() == expected, result.describe()


def assert_all_landed(result: Result, expected: Mapping[str, str]) -> None:
    """The child exited 0 and printed ``tag=db`` lines matching ``expected`` exactly."""
    assert result.rc == 0, result.describe()
    assert result.kv() == dict(expected), result.describe()


# --- one connect through a chosen client -----------------------------------------------------

#: Clients that `connect_with` knows: psql (system libpq, linked directly), psycopg2-binary and
#: psycopg-binary (bundled libpq copies, loaded RTLD_LOCAL by CPython) from .venv.
CLIENTS = ("psql", "psycopg2", "psycopg")

_PY_CONNECT = """
import {module}
try:
    conn = {module}.connect({conninfo!r})
except Exception as exc:
    connect_failed({module!r}, exc)
    sys.exit(2)
cur = conn.cursor()
cur.execute({query!r})
print("db=" + cur.fetchone()[0], flush=True)
conn.close()
"""


def connect_with(
    launcher: Launcher,
    client: str,
    conninfo: str,
    extra_env: Mapping[str, str],
    *,
    hold: bool = False,
) -> Result:
    """Connect once through ``client`` with ``conninfo`` and print the database landed in.

    With ``hold`` the child is watched (see ``Launcher.run``) and a session that did connect stays
    for ``HOLD_S`` seconds, so that ``Result.sightings`` cannot miss it."""
    if client == "psql":
        return launcher.run([*(PSQL_HOLD if hold else PSQL_QUERY), conninfo], extra_env, watch=hold)
    if client not in CLIENTS:
        raise ValueError(client)
    query = "SELECT current_database()"
    if hold:
        query = f"SELECT current_database() FROM pg_sleep({HOLD_S})"
    code = _PY_CONNECT.format(module=client, conninfo=conninfo, query=query)
    return launcher.python(VENV_PYTHON, code, extra_env, watch=hold)


def landed_in(result: Result, client: str) -> str | None:
    """Database the client printed, or None when it did not get that far."""
    if result.rc != 0:
        return None
    if client == "psql":
        return result.stdout.strip()
    return result.kv().get("db")


def refusal_text(result: Result, client: str) -> str:
    """The driver's own error text for a refused connect (never the shim's log lines)."""
    if client == "psql":
        return result.stderr_without_log()
    return result.kv().get(f"{client}.error", "")
