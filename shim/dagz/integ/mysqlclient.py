"""DAGZ API for MySQL/MariaDB through mysqlclient: `MYSQL_CONFIG` and `create_worker_init`."""

from __future__ import annotations

from dagz.config import MYSQL_CONFIG

create_worker_init = MYSQL_CONFIG.create_worker_init

__all__ = ["MYSQL_CONFIG", "create_worker_init"]
