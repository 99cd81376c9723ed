"""MySQL `list_owned`: the databases on a server that carry a dagz stamp."""

from __future__ import annotations

from dagz.engines.base import Owned
from dagz.engines.mysql import batch
from dagz.engines.mysql.batch import _batch_error, _BatchError
from dagz.engines.mysql.connection import _connection, _supports_stamps
from dagz.engines.warm import owned_from_rows


def list_owned(**connect_kwargs: object) -> list[Owned]:
    """Every database on the server whose comment is a dagz stamp, by name (none on servers
    without database comments)."""
    what = "listing dagz's MySQL databases failed"
    with _connection(None, what, connect_kwargs) as conn:
        if not _supports_stamps(conn):
            return []
        try:
            (rows,) = batch._run(
                conn,
                [
                    "SELECT s.SCHEMA_NAME, s.SCHEMA_COMMENT,"
                    " SUM(t.DATA_LENGTH + t.INDEX_LENGTH)"
                    " FROM information_schema.SCHEMATA s LEFT JOIN information_schema.TABLES t"
                    " ON t.TABLE_SCHEMA = s.SCHEMA_NAME"
                    " WHERE s.SCHEMA_COMMENT LIKE 'dagz:%'"
                    " GROUP BY s.SCHEMA_NAME, s.SCHEMA_COMMENT ORDER BY s.SCHEMA_NAME"
                ],
            )
        except _BatchError as err:
            raise _batch_error(what, err, connect_kwargs) from err.exc
    return owned_from_rows(rows)
