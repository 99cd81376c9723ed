"""PostgreSQL `list_owned` (the worker databases dagz made on a server) and `comment_of` (one
database's comment, where dagz's stamp is)."""

from __future__ import annotations

from dagz.engines.base import Owned
from dagz.engines.postgres.connection import _failing_as, _fetch, _maintenance
from dagz.engines.warm import owned_from_rows


def list_owned(**connect_kwargs: object) -> list[Owned]:
    """Every database on the server named like a worker copy of the base its stamp names, by
    name (`dagz.engines.warm.owned_from_rows`)."""
    what = "listing dagz's PostgreSQL databases failed"
    with _maintenance((), what, connect_kwargs) as conn, _failing_as(what, connect_kwargs):
        rows = _fetch(
            conn,
            "SELECT datname, shobj_description(oid, 'pg_database'),"
            " CASE WHEN has_database_privilege(oid, 'CONNECT')"
            " THEN pg_database_size(oid) END"
            " FROM pg_database"
            " WHERE shobj_description(oid, 'pg_database') LIKE 'dagz:%' ORDER BY datname",
        )
    return owned_from_rows(rows, "pg")


def comment_of(db_name: str, **connect_kwargs: object) -> tuple[bool, str | None]:
    """(whether `db_name` exists, its comment)."""
    what = f"reading the comment of PostgreSQL database {db_name!r} failed"
    with _maintenance((), what, connect_kwargs) as conn, _failing_as(what, connect_kwargs):
        rows = _fetch(
            conn,
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (db_name,),
        )
    return bool(rows), (None if not rows or rows[0][0] is None else str(rows[0][0]))
