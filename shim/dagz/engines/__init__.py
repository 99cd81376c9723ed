"""dagz's database engines: one package per database family, each making the `Engine` protocol
(`dagz.engines.base`); the warm-start lifecycle they share is `dagz.engines.warm`.

A new family is one package here (connect, truncate, clone, drop, fingerprint, a `warm_session`
with the primitives of `dagz.engines.base.WarmSession`, list_owned) and one entry in
`for_engine`.
"""

from __future__ import annotations

import importlib
from typing import cast

from dagz._shim import ENGINE_MYSQL, ENGINE_POSTGRES
from dagz.engines.base import Engine

#: Engine ids of the shim and names, to the engine's package.
_PACKAGES: dict[int | str, str] = {
    ENGINE_POSTGRES: "postgres",
    "pg": "postgres",
    "postgres": "postgres",
    "postgresql": "postgres",
    ENGINE_MYSQL: "mysql",
    "mysql": "mysql",
    "mariadb": "mysql",
    # Families the shim does not hook (dagz.families): what `dagz db list/drop` reads.
    "redis": "redis",
    "rabbitmq": "rabbitmq",
    "amqp": "rabbitmq",
}


def for_engine(engine: int | str) -> Engine:
    """The engine for a shim engine id (`dagz._shim.ENGINE_POSTGRES`, `ENGINE_MYSQL`) or a name
    ("pg", "postgres", "mysql"); its package is imported on first use."""
    key = engine.lower() if isinstance(engine, str) else engine
    package = _PACKAGES.get(key)
    if package is None:
        raise ValueError(
            f"dagz: unknown database engine {engine!r} (known: pg, mysql, redis, rabbitmq)"
        )
    return cast(Engine, importlib.import_module(f"dagz.engines.{package}"))
