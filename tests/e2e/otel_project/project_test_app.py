"""test_app.py of the otel_project sample (see README.md)."""

from __future__ import annotations

import os

import dagz.otel
import psycopg2
import psycopg2.errors
import pytest
import requests
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

MODE = os.environ.get("OTEL_E2E_MODE", "full")
MANY = int(os.environ.get("OTEL_E2E_MANY", "8"))


def test_queries_and_http(conn: psycopg2.extensions.connection, http_server: str) -> None:
    cur = conn.cursor()
    cur.execute("SELECT 1")
    cur.execute("SELECT current_database()")
    print(f"current_database={cur.fetchone()[0]}")
    cur.execute("SELECT count(*) FROM pg_class WHERE relname = %s", ("pg_class",))
    response = requests.get(f"{http_server}/hello", timeout=10)
    assert response.status_code == 200
    assert response.text == "/hello\n"


def test_failing_query(conn: psycopg2.extensions.connection) -> None:
    cur = conn.cursor()
    with pytest.raises(psycopg2.errors.UndefinedTable):
        cur.execute("SELECT * FROM dagz_no_such_table")
    conn.rollback()


@pytest.mark.parametrize("n", range(MANY))
def test_many(conn: psycopg2.extensions.connection, n: int) -> None:
    cur = conn.cursor()
    cur.execute("SELECT %s", (n,))
    assert cur.fetchone()[0] == n


def test_manual_span() -> None:
    """A span made by hand through whatever provider is global now."""
    with trace.get_tracer("manual").start_as_current_span("work"):
        pass


@pytest.mark.skipif(MODE != "late_provider", reason="only when the provider is set late")
def test_late_provider() -> None:
    provider = TracerProvider()
    trace.set_tracer_provider(provider)
    with provider.get_tracer("late").start_as_current_span("late-work"):
        pass


@pytest.mark.skipif(not os.environ.get("OTEL_E2E_EXPECT_INACTIVE"), reason="dagz is active")
def test_configure_was_a_noop() -> None:
    """Run without dagz active: the conftest's configure() call changed nothing."""
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert not hasattr(trace.set_tracer_provider, "__dagz_original__")
    assert "logging" not in os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    assert not dagz.otel.is_configured()


@pytest.mark.skipif(not os.environ.get("OTEL_E2E_WITH_FAILURE"), reason="no failure asked for")
def test_fails_on_purpose() -> None:
    with trace.get_tracer("manual").start_as_current_span("before-failure"):
        pass
    raise AssertionError("failing on purpose")
