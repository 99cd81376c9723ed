"""DAGZ API for PostgreSQL through psycopg: `PG_CONFIG` and `create_worker_init`."""

from __future__ import annotations

from dagz.config import PG_CONFIG
from dagz.integ import _pyhooks

create_worker_init = PG_CONFIG.create_worker_init
_pyhooks.install_psycopg_python()

__all__ = ["PG_CONFIG", "create_worker_init"]
