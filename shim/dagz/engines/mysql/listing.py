"""MySQL `list_owned` (the worker databases dagz made on a server) and `comment_of` (one
database's comment, where dagz's stamp is)."""

from __future__ import annotations

from dagz.engines.base import Owned
from dagz.engines.mysql import batch
from dagz.engines.mysql.batch import _batch_error, _BatchError
from dagz.engines.mysql.connection import _connection, _literal, _supports_stamps
from dagz.engines.warm import owned_from_rows


def list_owned(**connect_kwargs: object) -> list[Owned]:
    """Every database on the server named like a worker copy of the base its stamp names, by
    name (`dagz.engines.warm.owned_from_rows`; none on servers without database comments)."""
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
    return owned_from_rows(rows, "mysql")


def comment_of(db_name: str, **connect_kwargs: object) -> tuple[bool, str | None]:
    """(whether `db_name` exists, its comment; None on servers without database comments)."""
    what = f"reading the comment of MySQL database {db_name!r} failed"
    with _connection(None, what, connect_kwargs) as conn:
        stamps = _supports_stamps(conn)
        column = "SCHEMA_COMMENT" if stamps else "NULL"
        try:
            (rows,) = batch._run(
                conn,
                [
                    f"SELECT {column} FROM information_schema.SCHEMATA"
                    f" WHERE SCHEMA_NAME = {_literal(conn, db_name)}"
                ],
            )
        except _BatchError as err:
            raise _batch_error(what, err, connect_kwargs) from err.exc
    return bool(rows), (None if not rows or rows[0][0] in (None, "") else str(rows[0][0]))
