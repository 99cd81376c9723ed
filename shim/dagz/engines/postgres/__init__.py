"""The PostgreSQL engine: `truncate`, `clone`, `drop`, `fingerprint`, `provision` (warm start)
and `list_owned` behind `PG_CONFIG` (see `dagz.engines.base.Engine`).

Split by concern: `connection` (driver, connect, errors, quoting), `truncation`, `cloning`,
`token` and `fingerprints` (the fingerprint and the state of a database), `copying` (COPY),
`warm` (keep and rebuild, for `dagz.engines.warm.provision`), `listing`.
"""

from __future__ import annotations

from dagz.engines import warm as _lifecycle
from dagz.engines.base import KEEP_TABLES as KEEP_TABLES
from dagz.engines.base import Outcome as Outcome
from dagz.engines.base import Owned as Owned
from dagz.engines.postgres.cloning import clone as clone
from dagz.engines.postgres.cloning import drop as drop
from dagz.engines.postgres.connection import connect as connect
from dagz.engines.postgres.connection import quote_ident as quote_ident
from dagz.engines.postgres.fingerprints import fingerprint as fingerprint
from dagz.engines.postgres.listing import comment_of as comment_of
from dagz.engines.postgres.listing import list_owned as list_owned
from dagz.engines.postgres.truncation import truncate as truncate
from dagz.engines.postgres.warm import warm_session as warm_session
from dagz.errors import EngineError as EngineError

NAME = "postgres"
LABEL = "PostgreSQL"

#: The name this error had before the engines shared one (`EngineError`).
PgUtilError = EngineError

#: `dagz.engines.warm.provision` for this engine.
provision = _lifecycle.engine_provision(__name__)
