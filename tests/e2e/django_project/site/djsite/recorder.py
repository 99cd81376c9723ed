"""Events written outside the migrated databases: one JSON line per event in ``$DZ_DJ_RECORD``
(migrations that ran, where each test landed)."""

from __future__ import annotations

import json
import os


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
