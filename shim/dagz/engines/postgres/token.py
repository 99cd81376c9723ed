"""The change token of a PostgreSQL database: proof that its catalog did not change since a
fingerprint was taken, so that the catalog part (25-60 ms on a fresh backend) need not be
computed again."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dagz.engines.base import DbConnection
from dagz.engines.postgres.connection import _fetch

# The change token of a database: the catalog fingerprint costs 25-60 ms on a fresh backend
# (100 tables: deparsing 300 indexes, 1200 columns…), the token ~10 ms. It is taken in the same
# REPEATABLE READ snapshot as a fingerprint: the snapshot's xmax and the transactions in
# progress (xip) — any transaction whose writes the snapshot does not see has an xid >= xmax or
# in xip — and an md5 of the row counts of the catalogs the fingerprint reads plus of the
# content of pg_class. Later, "no catalog row whose xmin is >= xmax or in xip (inserted or
# updated since), the same counts (nothing deleted), the same pg_class content" proves that the
# catalog is the one that was fingerprinted: then the stamp's catalog md5 is taken as the
# database's, and the catalog fingerprint is computed only when the token does not hold (and
# the stamp's tokens are then refreshed). pg_class is compared by content, not xmin, because
# TRUNCATE (e.g. dagz's truncate for tables with ON DELETE triggers) updates its rows;
# relfilenode, sizes, statistics and freeze horizons are left out of that content. A token
# older than `TOKEN_MAX_AGE` transactions has expired (xids wrap around, old rows get frozen).
_TOKEN_CATALOGS = (
    "pg_namespace",
    "pg_attribute",
    "pg_attrdef",
    "pg_constraint",
    "pg_index",
    "pg_trigger",
    "pg_rewrite",
    "pg_policy",
    "pg_sequence",
    "pg_proc",
    "pg_type",
    "pg_enum",
    "pg_range",
    "pg_collation",
    "pg_extension",
    "pg_inherits",
    "pg_statistic_ext",
    "pg_event_trigger",
    "pg_depend",
)

#: Transactions after which a change token is no longer trusted.
TOKEN_MAX_AGE = 500_000_000

_PG_CLASS_CONTENT = (
    "(SELECT md5(string_agg(concat_ws(' ', c.oid, c.relname, c.relnamespace, c.reltype,"
    " c.relowner, c.relam, c.reltablespace, c.reltoastrelid, c.relkind, c.relpersistence,"
    " c.relnatts, c.relchecks, c.relhasrules, c.relhastriggers, c.relhassubclass,"
    " c.relrowsecurity, c.relforcerowsecurity, c.relispopulated, c.relreplident,"
    " c.relispartition, c.relacl, c.reloptions, c.relpartbound), ',' ORDER BY c.oid))"
    " FROM pg_catalog.pg_class c)"
)


@dataclass(frozen=True)
class _Token:
    """A change token: the snapshot's xmax and the transactions in progress then (64-bit
    txids), and the digest. A catalog row written since has an xmin >= `xmax` or in `xip`."""

    xmax: int
    xip: tuple[int, ...]
    digest: str

    def text(self) -> str:
        xip = f".{'-'.join(map(str, self.xip))}" if self.xip else ""
        return f"{self.xmax}.{self.digest}{xip}"

    @staticmethod
    def parse(text: str | None) -> _Token | None:
        m = re.fullmatch(r"(\d+)\.([0-9a-f]{16})(?:\.(\d+(?:-\d+)*))?", text or "")
        if m is None:
            return None
        xip = tuple(int(x) for x in m[3].split("-")) if m[3] else ()
        return _Token(int(m[1]), xip, m[2])


#: More transactions in progress than this when a token is taken: it is not recorded (too long
#: for a database comment); the next run then fingerprints the catalog.
_TOKEN_MAX_XIP = 32


def _token_sql(since: _Token | None) -> str:
    """(snapshot xmax, transactions in progress, [[rows, rows written since `since`] per
    catalog], pg_class content md5, the user tables with pages) — one scan per catalog."""
    if since is None:
        newer = "false"
    else:
        newer = f"age(xmin) <= age('{since.xmax % (1 << 32)}'::xid)"
        if since.xip:
            xids = ", ".join(f"'{x % (1 << 32)}'::xid" for x in since.xip)
            newer += f" OR xmin = ANY(ARRAY[{xids}])"
    counts = ", ".join(
        f"(SELECT ARRAY[count(*), count(*) FILTER (WHERE {newer})] FROM pg_catalog.{c})"
        for c in _TOKEN_CATALOGS
    )
    return (
        "SELECT txid_snapshot_xmax(s), ARRAY(SELECT txid_snapshot_xip(s)),"
        f" ARRAY[{counts}], {_PG_CLASS_CONTENT}, {_PAGES_SQL} FROM txid_current_snapshot() s"
    )


#: The user tables (plain, partitioned roots) that have pages: only those can hold rows.
_PAGES_SQL = (
    "ARRAY(SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
    " AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
    " AND (c.relkind = 'p' OR pg_relation_size(c.oid) > 0))"
)


def _read_token_pages(conn: DbConnection, since: _Token | None) -> tuple[_Token, bool, set[str]]:
    """(the database's token now, whether its catalog is unchanged since `since`, the user tables
    that have pages). Run in the snapshot that the caller's other reads use."""
    xmax, xip, counts, pg_class, pages = _fetch(conn, _token_sql(since))[0]
    rows = " ".join(str(int(c[0])) for c in counts)
    digest = hashlib.md5(f"{rows} {pg_class}".encode(), usedforsecurity=False).hexdigest()[:16]
    running = tuple(sorted(int(x) for x in xip or []))
    if len(running) > _TOKEN_MAX_XIP:  # a token that can never hold
        token = _Token(0, (), digest)
    else:
        token = _Token(int(xmax), running, digest)
    unchanged = (
        since is not None
        and since.xmax > 0
        and 0 <= int(xmax) - since.xmax < TOKEN_MAX_AGE
        and sum(int(c[1] or 0) for c in counts) == 0
        and digest == since.digest
    )
    return token, unchanged, {str(x) for x in pages or []}
