"""DAGZ API for PostgreSQL through psycopg2: `PG_CONFIG` and `create_worker_init`."""

from __future__ import annotations

from dagz.config import PG_CONFIG

create_worker_init = PG_CONFIG.create_worker_init

__all__ = ["PG_CONFIG", "create_worker_init"]
