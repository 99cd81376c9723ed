"""The `dagz otel` terminal summary tells HTTP 4xx answers from errors, end to end.

A child pytest runs a small project under ``--dagz-workers 2`` (with and without
``--dagz-trace``): the real OpenTelemetry SDK with the real requests instrumentation (turned on
by ``dagz.otel.configure``), against a real HTTP server in a thread of the worker that answers
with the status code named by the path. The tests expect every answer they get and pass; the
summary counts the 404/409 answers as "4xx", and only the 500/503 answers and a refused
connection (an exception) as errors.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql

from support import VENV_PYTHON, Admin, Launcher, unique_name

RUN_TIMEOUT_S = 180.0
#: The multiplication sign of the summary (as in "requests.POST", sign, "4").
TIMES = "\u00d7"

CONFTEST = '''
"""conftest.py of the 4xx-summary project: PG rerouting configured, dagz.otel, an HTTP server."""

from __future__ import annotations

import http.server
import os
import socket
import threading
from collections.abc import Iterator

import dagz.otel
import pytest
from dagz.integ.psycopg2 import PG_CONFIG

PG_CONFIG.configure(
    PG_CONFIG.default_rewrite_db_name,
    PG_CONFIG.default_should_reroute,
    None,
    worker_init=PG_CONFIG.create_worker_init(
        [os.environ["OTEL_4XX_DB"]], host="127.0.0.1", port=5432, user="postgres"
    ),
)
dagz.otel.configure(dd=False)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers any method with the status code its path names (``/409`` -> 409)."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status = int(self.path.strip("/"))
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="http-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening: a connect to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
'''

TEST_APP = '''
"""test_app.py of the 4xx-summary project: every answer is the one the test expects."""

from __future__ import annotations

import pytest
import requests


def test_expected_client_errors(http_server: str) -> None:
    for code in (404, 409, 404):
        response = requests.post(f"{http_server}/{code}", json={"n": code}, timeout=10)
        assert response.status_code == code
    assert requests.post(f"{http_server}/201", json={}, timeout=10).status_code == 201


def test_server_errors(http_server: str) -> None:
    for code in (500, 503, 200):
        assert requests.get(f"{http_server}/{code}", timeout=10).status_code == code


def test_refused_connection(refused_port: int) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.delete(f"http://127.0.0.1:{refused_port}/", timeout=10)
'''


@dataclass(frozen=True)
class Run:
    rc: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return f"rc={self.rc}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"

    def summary(self) -> list[str]:
        """The lines of the ``dagz otel`` section of the terminal summary."""
        lines = self.stdout.splitlines()
        starts = [i for i, line in enumerate(lines) if re.match(r"^=+ dagz otel =+$", line)]
        assert len(starts) == 1, self.describe()
        section = []
        for line in lines[starts[0] + 1 :]:
            if line.startswith("="):
                break
            section.append(line)
        return section


def drop_databases(admin: Admin, base: str) -> None:
    rows = admin.conn.execute(
        "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
        (base, base + r"\_jw%"),
    ).fetchall()
    for (name,) in rows:
        admin.conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module", params=["summary only", "with a trace"])
def run(
    request: pytest.FixtureRequest,
    launcher: Launcher,
    shim: Path,
    admin: Admin,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Run]:
    db = unique_name("o4xx")
    directory = tmp_path_factory.mktemp("otel_4xx")
    (directory / "conftest.py").write_text(CONFTEST)
    (directory / "test_app.py").write_text(TEST_APP)
    (directory / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    args = ["--dagz-workers", "2"]
    if request.param == "with a trace":
        args.append("--dagz-trace=t.json")
    env = {k: v for k, v in launcher.env(preload=False).items() if not k.startswith("OTEL_")}
    tmp = directory / ".tmp"  # the run's TMPDIR: its dagz-run-* folder lands here, not in /tmp
    tmp.mkdir()
    env.update({"DAGZ_SHIM": str(shim), "OTEL_4XX_DB": db, "TMPDIR": str(tmp)})
    try:
        admin.conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
        proc = subprocess.run(
            [str(VENV_PYTHON), "-m", "pytest", *args],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        result = Run(proc.returncode, proc.stdout, proc.stderr)
        assert result.rc == 0, result.describe()
        yield result
    finally:
        drop_databases(admin, db)


def type_entry(text: str, otel_type: str) -> str:
    """The part of a summary line for `otel_type`: its name, the sign, its count, its time and
    what it counts in parentheses (e.g. 3 4xx)."""
    m = re.search(re.escape(otel_type) + " " + TIMES + r"\d+ [\d.]+ms(?: \([^)]*\))?", text)
    assert m is not None, (otel_type, text)
    return m.group(0)


def entry_is(entry: str, otel_type: str, count: int, note: str) -> bool:
    pattern = re.escape(otel_type) + " " + TIMES + f"{count} " + r"[\d.]+ms " + re.escape(note)
    return re.fullmatch(pattern, entry) is not None


def by_type_line(run: Run) -> str:
    found = [line for line in run.summary() if line.startswith("by otel_type: ")]
    assert len(found) == 1, run.describe()
    return found[0]


def line_of_test(run: Run, name: str) -> str:
    found = [line for line in run.summary() if f"test_app.py::{name} [gw" in line]
    assert len(found) == 1, (name, run.describe())
    return found[0]


def test_expected_4xx_answers_are_counted_as_4xx_not_errors(run: Run) -> None:
    post = type_entry(by_type_line(run), "requests.POST")
    assert entry_is(post, "requests.POST", 4, "(3 4xx)"), post
    per_test = type_entry(line_of_test(run, "test_expected_client_errors"), "requests.POST")
    assert entry_is(per_test, "requests.POST", 4, "(3 4xx)"), per_test


def test_5xx_answers_and_exceptions_are_errors(run: Run) -> None:
    line = by_type_line(run)
    get = type_entry(line, "requests.GET")
    assert entry_is(get, "requests.GET", 3, "(2 errors)"), get
    delete = type_entry(line, "requests.DELETE")
    assert entry_is(delete, "requests.DELETE", 1, "(1 error)"), delete
    server_errors = line_of_test(run, "test_server_errors")
    assert entry_is(type_entry(server_errors, "requests.GET"), "requests.GET", 3, "(2 errors)")
    assert "4xx" not in server_errors


def test_the_passing_run_reports_no_failed_test(run: Run) -> None:
    assert " FAILED" not in "\n".join(run.summary())
    assert re.search(r"\b3 passed\b", run.stdout), run.describe()
