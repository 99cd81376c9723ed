"""A custom driver wrapper calling ``PG_CONFIG.maybe_reroute_uri``: the rerouted URI, and the same
worker_init/prepare lifecycle as a connect the shim sees (the e2e suite counts the callbacks;
this file is run on its own, so every rerouting of the run goes through the wrapper)."""

from __future__ import annotations

import mydriver
import pytest
from dagz.integ.psycopg import PG_CONFIG
from dzsample import DB, count, execute, land, worker_db

HOST = "postgres@127.0.0.1:5432"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (f"postgresql://{HOST}/{DB}", "postgresql://{host}/{db}"),
        (
            f"postgres://{HOST}/{DB}?application_name=dz-wrapper",
            "postgres://{host}/{db}?application_name=dz-wrapper",
        ),
        (
            f"postgresql://{HOST}/{DB}?connect_timeout=10",
            "postgresql://{host}/{db}?connect_timeout=10",
        ),
    ],
    ids=["postgresql", "postgres-with-query", "connect-timeout"],
)
def test_wrapper_uri(uri: str, expected: str) -> None:
    conn = mydriver.connect(uri)
    try:
        assert mydriver.URIS[-1] == expected.format(host=HOST, db=worker_db())
        assert land("psycopg", conn, via="wrapper") == worker_db()
        # the clone made by worker_init is there, and prepare emptied it for this test
        assert count(conn, "items") == 0
        assert count(conn, "keep_me") == 0
        execute(conn, "INSERT INTO items (id, label) VALUES (1, 'wrapper')")
    finally:
        conn.close()


def test_wrapper_twice_in_one_test() -> None:
    for _ in range(2):
        conn = mydriver.connect(f"postgresql://{HOST}/{DB}")
        try:
            assert land("psycopg", conn, via="wrapper") == worker_db()
        finally:
            conn.close()


def test_wrapper_keyword_form() -> None:
    conn = mydriver.connect_db(DB)
    try:
        assert mydriver.URIS[-1] == worker_db()
        assert land("psycopg", conn, via="wrapper-keyword") == worker_db()
        assert count(conn, "items") == 0
    finally:
        conn.close()


def test_wrapper_system_database_untouched() -> None:
    conn = mydriver.connect(f"postgresql://{HOST}/postgres")
    try:
        assert mydriver.URIS[-1] == f"postgresql://{HOST}/postgres"
        assert land("psycopg", conn, via="wrapper", rerouted=False) == "postgres"
    finally:
        conn.close()


def test_wrapper_inside_bypass() -> None:
    with PG_CONFIG.bypass():
        conn = mydriver.connect(f"postgresql://{HOST}/{DB}")
        try:
            assert mydriver.URIS[-1] == f"postgresql://{HOST}/{DB}"
            assert land("psycopg", conn, via="wrapper", bypassed=True) == DB
        finally:
            conn.close()


def test_wrapper_no_connection() -> None:
    assert mydriver.URIS is not None
