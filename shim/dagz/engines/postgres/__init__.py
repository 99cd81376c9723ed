"""The PostgreSQL engine: `truncate`, `clone`, `drop`, `fingerprint`, `provision` (warm start)
and `list_owned` behind `PG_CONFIG` (see `dagz.engines.base.Engine`).

Split by concern: `connection` (driver, connect, errors, quoting), `truncation`, `cloning`,
`token` and `fingerprints` (the fingerprint and the state of a database), `copying` (COPY),
`warm` (keep and rebuild, for `dagz.engines.warm.provision`), `listing`.
"""

from __future__ import annotations

import sys
from typing import cast

from dagz.engines import warm as _lifecycle
from dagz.engines.base import KEEP_TABLES, Engine, Outcome, Owned
from dagz.engines.postgres.cloning import clone, drop
from dagz.engines.postgres.connection import connect, quote_ident
from dagz.engines.postgres.fingerprints import fingerprint
from dagz.engines.postgres.listing import list_owned
from dagz.engines.postgres.truncation import truncate
from dagz.engines.postgres.warm import warm_session
from dagz.errors import EngineError

NAME = "postgres"
LABEL = "PostgreSQL"

#: The name this error had before the engines shared one (`EngineError`).
PgUtilError = EngineError

__all__ = [
    "KEEP_TABLES",
    "LABEL",
    "NAME",
    "EngineError",
    "Outcome",
    "Owned",
    "PgUtilError",
    "clone",
    "connect",
    "drop",
    "fingerprint",
    "list_owned",
    "provision",
    "quote_ident",
    "truncate",
    "warm_session",
]


def provision(base: str, target: str, *, fresh: bool = False, **connect_kwargs: object) -> Outcome:
    """Makes `target` a copy of `base`, keeping the one from the last run when it still is one
    (`dagz.engines.warm.provision`)."""
    engine = cast(Engine, sys.modules[__name__])
    return _lifecycle.provision(engine, base, target, fresh=fresh, connect_kwargs=connect_kwargs)
