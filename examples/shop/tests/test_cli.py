"""The command line tool, run as a Python subprocess (under dagz it inherits the preload)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, text

from shopapp.audit import AuditLog
from tests.conftest import CATALOG, History

PROJECT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> object:
    result = subprocess.run(
        [sys.executable, "-m", "shopapp.cli", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_counts(history: History, engine: Engine, audit: AuditLog) -> None:
    out = cli("counts")
    assert isinstance(out, dict)
    with engine.connect() as conn:
        database = conn.scalar(text("SELECT current_database()"))
    assert out["database"] == database
    assert out["audit_database"] == audit.database()
    assert out["audit_entries"] == 47
    assert out["tables"]["orders"] == 24


def test_sales(history: History) -> None:
    out = cli("sales")
    assert isinstance(out, list)
    assert {r["sku"]: r["units"] for r in out} == history.expected_units()


def test_low_stock(catalog: dict[str, int]) -> None:
    out = cli("low-stock", "--threshold", "10")
    expected = sorted(
        ((sku, s) for sku, (_n, _p, s) in CATALOG.items() if s < 10), key=lambda x: (x[1], x[0])
    )
    assert out == [{"sku": s, "stock": q} for s, q in expected]


def test_audit_export(catalog: dict[str, int], audit: AuditLog) -> None:
    first = cli("audit-export")
    assert isinstance(first, list)
    assert [e["id"] for e in first] == list(range(1, 11))
    assert cli("audit-export") == []
    assert audit.exports() == [(1, 10, 10)]
