"""psql subprocesses: they connect to ``shop`` like the application does (under dagz they inherit
the preload and land in this worker's database)."""

from __future__ import annotations

import subprocess
from typing import Protocol

import pytest
from sqlalchemy import Engine, text

from shopapp import reports
from shopapp.services import Shop
from shopapp.settings import Settings
from tests.conftest import ALICE, CATALOG, History


class Psql(Protocol):
    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def psql(settings: Settings, engine: Engine) -> Psql:
    """Runs ``psql -d shop`` with the given arguments.

    Under dagz a child process lands in this worker's database but cannot run ``prepare`` (that
    happens in the test process, on the test's first connect): so connect once here first, for
    the tests that touch the database only through psql."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))

    def run(
        *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            settings.pg_host,
            "-p",
            str(settings.pg_port),
            "-U",
            settings.pg_user,
            "-d",
            settings.pg_database,
            *args,
        ]
        return subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=60, check=check
        )

    return run


def test_psql_uses_the_database_of_this_process(psql: Psql, engine: Engine) -> None:
    with engine.connect() as conn:
        mine = conn.scalar(text("SELECT current_database()"))
    out = psql("-c", "SELECT current_database()").stdout.strip()
    assert out == mine


@pytest.mark.parametrize(
    ("table", "count"),
    [("products", 10), ("inventory", 10), ("customers", 3), ("orders", 0), ("coupons", 0)],
)
def test_psql_counts_fixture_rows(
    psql: Psql,
    catalog: dict[str, int],
    customers: dict[str, int],
    table: str,
    count: int,
) -> None:
    out = psql("-c", f"SELECT COUNT(*) FROM {table}").stdout.strip()
    assert int(out) == count


def test_psql_sees_orders_placed_through_the_orm(
    psql: Psql, shop: Shop, catalog: dict[str, int], customers: dict[str, int]
) -> None:
    for _ in range(3):
        shop.place_order(ALICE, [("A-100", 1), ("B-204", 2)])
    out = psql("-F", ",", "-c", "SELECT id, total_cents FROM orders ORDER BY id").stdout.split()
    assert out == ["1,5400", "2,5400", "3,5400"]


def test_psql_copy_import(psql: Psql, shop: Shop, customers: dict[str, int]) -> None:
    rows = "\n".join(f"P-{i:03d},Imported {i},{500 + i}" for i in range(30))
    script = (
        "\\copy products (sku, name, price_cents) FROM STDIN WITH (FORMAT csv)\n"
        f"{rows}\n\\.\n"
        "INSERT INTO inventory (product_id, quantity) SELECT id, 5 FROM products;\n"
    )
    psql("-1", stdin=script)
    assert shop.product("P-029").id == 30
    order = shop.place_order(ALICE, [("P-000", 5), ("P-001", 1)])
    assert order.total_cents == 5 * 500 + 501
    assert shop.stock("P-000") == 0


def test_psql_script_is_atomic(psql: Psql, shop: Shop, catalog: dict[str, int]) -> None:
    script = (
        "UPDATE products SET price_cents = price_cents * 2;\n"
        "INSERT INTO products (sku, name, price_cents) VALUES ('A-100', 'dup', 1);\n"
    )
    result = psql("-1", stdin=script, check=False)
    assert result.returncode == 3
    assert 'duplicate key value violates unique constraint "products_sku_key"' in result.stderr
    assert shop.product("A-100").price_cents == 2400


@pytest.mark.parametrize("sku", ["A-100", "B-202", "A-104"])
def test_psql_variables(psql: Psql, catalog: dict[str, int], sku: str) -> None:
    out = psql(
        "-v",
        f"sku={sku}",
        stdin="SELECT i.quantity FROM inventory i JOIN products p ON p.id = i.product_id"
        " WHERE p.sku = :'sku';\n",
    ).stdout.strip()
    assert int(out) == CATALOG[sku][2]


def test_psql_report_matches_the_view(psql: Psql, history: History, engine: Engine) -> None:
    out = psql(
        "-F",
        "|",
        "-c",
        "SELECT sku, units, revenue_cents FROM product_sales ORDER BY revenue_cents DESC, sku",
    ).stdout.split()
    expected = [f"{r.sku}|{r.units}|{r.revenue_cents}" for r in reports.sales_by_product(engine)]
    assert out == expected


def test_psql_writes_seen_by_the_service(psql: Psql, shop: Shop, catalog: dict[str, int]) -> None:
    psql("-c", "UPDATE inventory SET quantity = 0 WHERE product_id = 1")
    assert shop.stock("A-100") == 0
    assert shop.restock("A-100", 4) == 4


def test_psql_sequences_start_at_one(psql: Psql) -> None:
    out = psql(
        "-c",
        "INSERT INTO customers (email, name) VALUES ('psql@example.com', 'P') RETURNING id",
    ).stdout.strip()
    assert out == "1"
