"""The migrated schema: versions, tables, constraints, the view and the MySQL trigger."""

from __future__ import annotations

import os

import psycopg
import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from shopapp import migrate
from shopapp.audit import AuditLog
from shopapp.models import Base
from shopapp.settings import Settings

PG_TABLES = ["customers", "products", "inventory", "orders", "order_lines", "coupons", "outbox"]


def test_pg_at_latest_version(engine: Engine) -> None:
    with engine.connect() as conn:
        versions = list(conn.scalars(text("SELECT version FROM schema_migrations ORDER BY 1")))
    assert versions == [1, 2, 3, 4, 5]


def test_mysql_at_latest_version(audit: AuditLog) -> None:
    rows = audit._query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[1][1] == "action counters (trigger)"


def test_migrate_again_applies_nothing(settings: Settings) -> None:
    results = migrate.migrate(settings)
    assert [(r.version, r.applied) for r in results] == [(5, ()), (3, ())]


def test_status_lists_both_databases(settings: Settings) -> None:
    lines = migrate.status(settings)
    assert lines == [
        f"{settings.pg_database}: versions [1, 2, 3, 4, 5] (latest 5)",
        f"{settings.mysql_database}: versions [1, 2, 3] (latest 3)",
    ]


@pytest.mark.parametrize("table", PG_TABLES)
def test_table_starts_empty(engine: Engine, table: str) -> None:
    with engine.connect() as conn:
        assert conn.scalar(text(f"SELECT COUNT(*) FROM {table}")) == 0


@pytest.mark.parametrize("table", ["audit_log", "audit_counters", "audit_exports"])
def test_audit_table_starts_empty(audit: AuditLog, table: str) -> None:
    assert audit._query(f"SELECT COUNT(*) FROM {table}")[0][0] == 0


def test_models_match_migrated_tables(engine: Engine) -> None:
    insp = inspect(engine)
    for table in Base.metadata.sorted_tables:
        db_columns = {c["name"] for c in insp.get_columns(table.name)}
        assert db_columns == set(table.columns.keys()), table.name


def test_foreign_keys(engine: Engine) -> None:
    insp = inspect(engine)
    fks = {(t, fk["referred_table"]) for t in PG_TABLES for fk in insp.get_foreign_keys(t)}
    assert fks == {
        ("inventory", "products"),
        ("orders", "customers"),
        ("orders", "coupons"),
        ("order_lines", "orders"),
        ("order_lines", "products"),
        ("outbox", "orders"),
    }


def test_product_sales_view_lists_every_product(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO products (sku, name, price_cents) VALUES ('V-1', 'v', 5)"))
        rows = conn.execute(text("SELECT sku, units, revenue_cents FROM product_sales")).all()
    assert [tuple(r) for r in rows] == [("V-1", 0, 0)]


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("INSERT INTO products (sku, name, price_cents) VALUES ('X-1', 'x', 0)", "price"),
        (
            "INSERT INTO customers (email, name, loyalty_points) VALUES ('x@y.z', 'x', -1)",
            "loyalty_points",
        ),
        ("INSERT INTO coupons (code, percent_off, max_uses) VALUES ('C', 101, 1)", "percent_off"),
        ("INSERT INTO coupons (code, percent_off, max_uses, uses) VALUES ('C', 5, 1, 2)", "uses"),
        ("INSERT INTO orders (customer_id, total_cents) VALUES (42, 100)", "customer_id"),
    ],
)
def test_constraints_reject_bad_rows(engine: Engine, statement: str, constraint: str) -> None:
    with pytest.raises(IntegrityError, match=constraint), engine.begin() as conn:
        conn.execute(text(statement))


def test_email_unique_ignoring_case(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO customers (email, name) VALUES ('Dup@Example.com', 'a')"))
    with pytest.raises(IntegrityError, match="customers_email_key"), engine.begin() as conn:
        conn.execute(text("INSERT INTO customers (email, name) VALUES ('dup@example.com', 'b')"))


def test_mysql_trigger_counts_inserts(audit: AuditLog) -> None:
    for action in ("a", "b", "a", "a"):
        audit.record(action, "thing", 1)
    assert audit.counters() == {"a": 3, "b": 1}


def test_mysql_foreign_key_survives(audit: AuditLog) -> None:
    rows = audit._query(
        "SELECT CONSTRAINT_NAME, REFERENCED_TABLE_NAME"
        " FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()"
    )
    assert [tuple(r) for r in rows] == [("audit_exports_last_fk", "audit_log")]


def test_mysql_view_exists(audit: AuditLog) -> None:
    rows = audit._query(
        "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()"
    )
    assert [r[0] for r in rows] == ["audit_entity_summary"]


def test_each_process_uses_one_database_pair(
    engine: Engine, audit: AuditLog, settings: Settings
) -> None:
    """Under dagz, worker gwN uses shop_jwNN and shop_audit_jwNN; without it, the bases."""
    with engine.connect() as conn:
        pg = str(conn.scalar(text("SELECT current_database()")))
    my = audit.database()
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if pg == settings.pg_database:
        assert my == settings.mysql_database
    else:
        suffix = pg.removeprefix(settings.pg_database)
        assert suffix.startswith("_jw")
        assert my == settings.mysql_database + suffix
        if worker is not None:
            assert suffix == f"_jw{int(worker.removeprefix('gw')):02d}"


def test_raw_psycopg_lands_where_sqlalchemy_does(engine: Engine, settings: Settings) -> None:
    with psycopg.connect(settings.pg_conninfo) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    with engine.connect() as sa:
        assert sa.scalar(text("SELECT current_database()")) == (row[0] if row else None)
