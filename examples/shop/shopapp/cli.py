"""Command line: ``python -m shopapp.cli {sales,top-customers,low-stock,counts,audit-export}``.

Prints JSON on stdout. Used by operators (and by tests, as a subprocess)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from shopapp import reports
from shopapp.audit import AuditLog
from shopapp.db import make_engine
from shopapp.settings import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shopapp.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("sales", help="units and revenue per product")
    top = sub.add_parser("top-customers", help="best customers")
    top.add_argument("--limit", type=int, default=5)
    low = sub.add_parser("low-stock", help="products running out")
    low.add_argument("--threshold", type=int, default=5)
    sub.add_parser("counts", help="rows per table, and the database names")
    sub.add_parser("audit-export", help="audit entries since the last export")
    args = parser.parse_args(argv)

    settings = load()
    engine = make_engine(settings, pool_size=1)
    try:
        out: Any
        if args.command == "sales":
            out = [asdict(r) for r in reports.sales_by_product(engine)]
        elif args.command == "top-customers":
            out = [asdict(r) for r in reports.top_customers(engine, args.limit)]
        elif args.command == "low-stock":
            out = [{"sku": s, "stock": q} for s, q in reports.low_stock(engine, args.threshold)]
        elif args.command == "counts":
            with AuditLog(settings, actor="cli") as audit:
                out = {
                    "tables": reports.table_counts(engine),
                    "audit_entries": audit.count(),
                    "audit_database": audit.database(),
                }
            with engine.connect() as conn:
                out["database"] = conn.exec_driver_sql("SELECT current_database()").scalar()
        else:
            with AuditLog(settings, actor="cli") as audit:
                out = [
                    {"id": e.id, "action": e.action, "entity": e.entity, "entity_id": e.entity_id}
                    for e in audit.export_since_last()
                ]
    finally:
        engine.dispose()
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
