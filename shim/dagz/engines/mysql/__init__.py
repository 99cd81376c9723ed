"""The MySQL/MariaDB engine: `truncate`, `clone`, `drop`, `fingerprint`, `provision` (warm start)
and `list_owned` behind `MYSQL_CONFIG` (see `dagz.engines.base.Engine`).

Split by concern: `connection` (driver, connect, errors, quoting), `batch` (multi-statement
batches), `truncation`, `cloning`, `fingerprints`, `warm` (keep and rebuild, for
`dagz.engines.warm.provision`), `listing`.
"""

from __future__ import annotations

from dagz.engines import warm as _lifecycle
from dagz.engines.base import KEEP_TABLES as KEEP_TABLES
from dagz.engines.base import Outcome as Outcome
from dagz.engines.base import Owned as Owned
from dagz.engines.mysql.cloning import clone as clone
from dagz.engines.mysql.cloning import drop as drop
from dagz.engines.mysql.connection import connect as connect
from dagz.engines.mysql.connection import quote_ident as quote_ident
from dagz.engines.mysql.fingerprints import fingerprint as fingerprint
from dagz.engines.mysql.listing import comment_of as comment_of
from dagz.engines.mysql.listing import list_owned as list_owned
from dagz.engines.mysql.truncation import EMPTY_METHOD as EMPTY_METHOD
from dagz.engines.mysql.truncation import truncate as truncate
from dagz.engines.mysql.warm import warm_session as warm_session
from dagz.errors import EngineError as EngineError

NAME = "mysql"
LABEL = "MySQL"

#: The name this error had before the engines shared one (`EngineError`).
MySQLUtilError = EngineError

#: `dagz.engines.warm.provision` for this engine.
provision = _lifecycle.engine_provision(__name__)
