"""DAGZ API for PostgreSQL through asyncpg (pure-Python protocol: hooked from Python)."""

from __future__ import annotations

from dagz.config import PG_CONFIG
from dagz.integ import _pyhooks

create_worker_init = PG_CONFIG.create_worker_init
_pyhooks.install_asyncpg()

__all__ = ["PG_CONFIG", "create_worker_init"]
