"""conftest.py of the otel_project sample (see README.md): PG rerouting + dagz.otel."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator

import dagz.otel
import psycopg2
import pytest
from dagz.integ.psycopg2 import PG_CONFIG
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

MODE = os.environ.get("OTEL_E2E_MODE", "full")
DB = os.environ.get("OTEL_E2E_DB", "")
CONN: dict[str, object] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}

if DB:
    PG_CONFIG.configure(
        PG_CONFIG.default_rewrite_db_name,
        PG_CONFIG.default_should_reroute,
        None,
        # The base does not exist: the tests make their tables (a migrating suite).
        worker_init=PG_CONFIG.create_worker_init([DB], empty_if_missing=True, **CONN),
    )

if MODE == "full":
    dagz.otel.configure(dd=False)
elif MODE == "late_provider":
    dagz.otel.configure(dd=False, start_provider=False, auto_instrument=False)
elif MODE == "dd_true":
    dagz.otel.configure(dd=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers GET with the path; its server-side span is made by hand (no instrumentation for
    http.server), a child of the client's span through the propagated traceparent header."""

    def do_GET(self) -> None:
        ctx = propagate.extract(dict(self.headers.items()))
        tracer = trace.get_tracer("httpserver")
        status = 500 if self.path.startswith("/fail") else 200
        body = f"{self.path}\n".encode()
        with tracer.start_as_current_span(
            f"GET {self.path}",
            context=ctx,
            kind=SpanKind.SERVER,
            attributes={"http.method": "GET", "http.target": self.path},
        ) as span:
            span.set_attribute("http.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, "server error"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
        # The span ends before the body goes out: the client (the test) cannot be done before.
        self.wfile.write(body)

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
def conn() -> Iterator[object]:
    if not DB:
        pytest.skip("OTEL_E2E_DB not set")
    c = psycopg2.connect(dbname=DB, **CONN)
    try:
        yield c
    finally:
        c.close()
