"""DAGZ API for MySQL/MariaDB through pymysql: `MYSQL_CONFIG` and `create_worker_init`."""

from __future__ import annotations

from dagz.config import MYSQL_CONFIG
from dagz.integ import _pyhooks

create_worker_init = MYSQL_CONFIG.create_worker_init
_pyhooks.install_pymysql()

__all__ = ["MYSQL_CONFIG", "create_worker_init"]
