"""The MySQL/MariaDB engine: `truncate`, `clone`, `drop`, `fingerprint`, `provision` (warm start)
and `list_owned` behind `MYSQL_CONFIG` (see `dagz.engines.base.Engine`).

Split by concern: `connection` (driver, connect, errors, quoting), `batch` (multi-statement
batches), `truncation`, `cloning`, `fingerprints`, `warm` (keep and rebuild, for
`dagz.engines.warm.provision`), `listing`.
"""

from __future__ import annotations

import sys
from typing import cast

from dagz.engines import warm as _lifecycle
from dagz.engines.base import KEEP_TABLES, Engine, Outcome, Owned
from dagz.engines.mysql.cloning import clone, drop
from dagz.engines.mysql.connection import connect, quote_ident
from dagz.engines.mysql.fingerprints import fingerprint
from dagz.engines.mysql.listing import list_owned
from dagz.engines.mysql.truncation import EMPTY_METHOD, truncate
from dagz.engines.mysql.warm import warm_session
from dagz.errors import EngineError

NAME = "mysql"
LABEL = "MySQL"

#: The name this error had before the engines shared one (`EngineError`).
MySQLUtilError = EngineError

__all__ = [
    "EMPTY_METHOD",
    "KEEP_TABLES",
    "LABEL",
    "NAME",
    "EngineError",
    "MySQLUtilError",
    "Outcome",
    "Owned",
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
    (`dagz.engines.warm.provision`). Servers without database comments (MySQL, MariaDB < 10.5)
    always clone."""
    engine = cast(Engine, sys.modules[__name__])
    return _lifecycle.provision(engine, base, target, fresh=fresh, connect_kwargs=connect_kwargs)
