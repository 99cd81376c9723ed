"""Where the databases, the cache and the broker are: environment variables with
local-development defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value else default


@dataclass(frozen=True)
class Settings:
    pg_host: str = field(default_factory=lambda: _env("SHOP_PG_HOST", "127.0.0.1"))
    pg_port: int = field(default_factory=lambda: int(_env("SHOP_PG_PORT", "5432")))
    pg_user: str = field(default_factory=lambda: _env("SHOP_PG_USER", "postgres"))
    pg_password: str = field(default_factory=lambda: _env("SHOP_PG_PASSWORD", ""))
    pg_database: str = field(default_factory=lambda: _env("SHOP_PG_DATABASE", "shop"))
    mysql_host: str = field(default_factory=lambda: _env("SHOP_MYSQL_HOST", "127.0.0.1"))
    mysql_port: int = field(default_factory=lambda: int(_env("SHOP_MYSQL_PORT", "3306")))
    mysql_user: str = field(default_factory=lambda: _env("SHOP_MYSQL_USER", "root"))
    mysql_password: str = field(default_factory=lambda: _env("SHOP_MYSQL_PASSWORD", ""))
    mysql_database: str = field(default_factory=lambda: _env("SHOP_MYSQL_DATABASE", "shop_audit"))
    #: The product cache (`shopapp.cache`): index 0 of the local Redis.
    redis_url: str = field(
        default_factory=lambda: _env("SHOP_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    #: The task broker (`shopapp.tasks`): the default vhost ``/`` of the local RabbitMQ.
    amqp_url: str = field(
        default_factory=lambda: _env("SHOP_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
    )

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the shop database (psycopg 3 driver)."""
        auth = self.pg_user + (f":{self.pg_password}" if self.pg_password else "")
        return f"postgresql+psycopg://{auth}@{self.pg_host}:{self.pg_port}/{self.pg_database}"

    def pg_kwargs(self, dbname: str | None = None) -> dict[str, Any]:
        """psycopg/libpq keyword arguments (`dbname` defaults to the shop database)."""
        kwargs: dict[str, Any] = {
            "host": self.pg_host,
            "port": self.pg_port,
            "user": self.pg_user,
            "dbname": dbname or self.pg_database,
        }
        if self.pg_password:
            kwargs["password"] = self.pg_password
        return kwargs

    @property
    def pg_conninfo(self) -> str:
        """A libpq conninfo string for the shop database (psql, psycopg)."""
        return " ".join(f"{k}={v}" for k, v in self.pg_kwargs().items())

    def mysql_kwargs(self, database: str | None = None) -> dict[str, Any]:
        """MySQLdb.connect keyword arguments (`database` defaults to the audit database)."""
        kwargs: dict[str, Any] = {
            "host": self.mysql_host,
            "port": self.mysql_port,
            "user": self.mysql_user,
            "password": self.mysql_password,
            "charset": "utf8mb4",
        }
        db = self.mysql_database if database is None else database
        if db:
            kwargs["database"] = db
        return kwargs


def load() -> Settings:
    return Settings()
