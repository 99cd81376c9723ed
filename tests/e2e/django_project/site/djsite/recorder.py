"""Events written outside the migrated databases: one JSON line per event in ``$DZ_DJ_RECORD``
(migrations that ran, where each test landed)."""

from __future__ import annotations

import json
import os

from django.db import connections


def record(event: str, **fields: object) -> None:
    path = os.environ.get("DZ_DJ_RECORD")
    if not path:
        return
    line = json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def record_landing(alias: str) -> tuple[str, str]:
    """Records (and returns) where `alias` is connected: Django's settings name and the server's
    own ``current_database()`` / ``DATABASE()``."""
    conn = connections[alias]
    query = "SELECT current_database()" if conn.vendor == "postgresql" else "SELECT DATABASE()"
    with conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone()
    name, server = str(conn.settings_dict["NAME"]), str(row[0])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    record("landed", alias=alias, settings=name, server=server, worker=worker)
    return name, server
