"""PostgreSQL `list_owned`: the databases on a server that carry a dagz stamp."""

from __future__ import annotations

from dagz.engines.base import Owned
from dagz.engines.postgres.connection import _failing_as, _fetch, _maintenance
from dagz.engines.warm import owned_from_rows


def list_owned(**connect_kwargs: object) -> list[Owned]:
    """Every database on the server whose comment is a dagz stamp, by name."""
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
    return owned_from_rows(rows)
