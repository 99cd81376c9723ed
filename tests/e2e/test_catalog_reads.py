"""dagz's reads of a MariaDB database's catalog open only that database's tables.

MariaDB fills an information_schema table either for the one schema a ``WHERE`` names in the
table's lookup column, or by scanning every database on the server (EXPLAIN says "Scanned all
databases"). A scan opens the tables of every other database, which is slow on a busy server
and waits on their locks. It made the CI flakes: a provisioning read of
``information_schema.TRIGGERS`` (filtered on TRIGGER_SCHEMA, not a lookup column) waited on
another test's prepared XA transaction, and it passed through other databases, where a drop of
one of them ended it. Checked with the server's own EXPLAIN of every catalog statement that
cloning and fingerprinting send.
"""

from __future__ import annotations

from dagz.engines import mysql as _mysql
from dagz.engines.mysql import cloning, fingerprints
from db_fixtures import MY, pg_databases  # noqa: F401 - fixture used by name


def _statements() -> list[str]:
    lit = "'dz_no_such_database'"
    parts = [fingerprints._part_sql(lit, part) for part in fingerprints._ALL_PARTS]
    return [*cloning.catalog_sql(lit), *parts]


def test_catalog_statements_scan_one_database() -> None:
    conn = _mysql.connect(None, **MY)
    try:
        cur = conn.cursor()
        scans = []
        for statement in _statements():
            cur.execute("EXPLAIN " + statement)
            extras = [str(row[-1]) for row in cur.fetchall()]
            if any("Scanned all databases" in extra for extra in extras):
                scans.append(statement[:120])
    finally:
        conn.close()
    assert len(_statements()) >= 15
    assert scans == [], "statements that scan every database:\n" + "\n".join(scans)
