"""The fingerprint of a PostgreSQL database (see `dagz.engines.warm`) and what dagz reads of a
database to restore its rows: its state, read in one snapshot."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dagz.engines import warm
from dagz.engines.base import KEEP_TABLES, DbConnection
from dagz.engines.postgres.connection import (
    LOCK_TIMEOUT,
    _connection,
    _error,
    _execute,
    _fetch,
    _rollback,
)
from dagz.engines.postgres.token import _read_token_pages, _Token

# The catalog part of the fingerprint, as one text per object (`items(k, t)`), hashed by the
# server. Every object of the user schemas (not information_schema, pg_*, temporary schemas) that
# is not an extension member: relations with their options, owner and privileges, columns
# (position, name, type and typmod, not-null, identity, generated, collation, default),
# constraints and indexes (their server-made definitions), view and trigger definitions, rules,
# policies, sequence parameters and ownership, functions (full definitions), types (enum labels,
# domains, ranges), extensions and their versions, extended statistics, event triggers, the
# database's encoding and locale. Names, never OIDs, except where a base and its file copy agree
# by construction (column positions). Free text goes through %L (quoted, NULL as NULL): no two
# different catalogs give the same text.
_HEAD_CTE = """
WITH ns AS (
  SELECT oid, nspname FROM pg_namespace
   WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'
),
extm AS (
  SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
),
rel AS (
  SELECT c.oid, c.relkind, format('%I.%I', n.nspname, c.relname) AS qn
    FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
     AND NOT EXISTS (SELECT 1 FROM extm
                      WHERE extm.classid = 'pg_class'::regclass AND extm.objid = c.oid)
)
"""
_FINGERPRINT_CTE = (
    _HEAD_CTE
    + """,
items(k, t) AS (
  SELECT 'database', format('%s %L %L', pg_encoding_to_char(d.encoding), d.datcollate,
         d.datctype)
    FROM pg_database d WHERE d.datname = current_database()
  UNION ALL
  SELECT 'schema', format('%I %I %L', n.nspname, pg_get_userbyid(n.nspowner), n.nspacl)
    FROM pg_namespace n JOIN ns ON ns.oid = n.oid
  UNION ALL
  SELECT 'extension', format('%I %L %I', e.extname, e.extversion, n.nspname)
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
  UNION ALL
  SELECT 'relation', format('%s %s %s %L %s %s %s %I %L %L %L', r.qn, c.relkind,
         c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
         c.relreplident, pg_get_userbyid(c.relowner), c.relacl,
         CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
         pg_get_expr(c.relpartbound, c.oid))
    FROM rel r JOIN pg_class c ON c.oid = r.oid
  UNION ALL
  SELECT 'inherits', format('%s %s %s', r.qn, i.inhseqno, i.inhparent::regclass)
    FROM pg_inherits i JOIN rel r ON r.oid = i.inhrelid
  UNION ALL
  SELECT 'column', format('%s %s %I %I.%I %s %s %s %L %L %L %L %L', r.qn, a.attnum, a.attname,
         tn.nspname, t.typname, a.atttypmod, a.attndims, a.attnotnull, a.attidentity,
         a.attgenerated, CASE WHEN a.attcollation <> t.typcollation THEN co.collname END,
         pg_get_expr(ad.adbin, ad.adrelid), a.attacl)
    FROM pg_attribute a JOIN rel r ON r.oid = a.attrelid
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_namespace tn ON tn.oid = t.typnamespace
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'constraint', format('%s %I %s %L', coalesce(r.qn, co.contypid::regtype::text),
         co.conname, co.contype, pg_get_constraintdef(co.oid))
    FROM pg_constraint co JOIN ns ON ns.oid = co.connamespace
    LEFT JOIN rel r ON r.oid = co.conrelid
   WHERE r.oid IS NOT NULL OR co.contypid <> 0
  UNION ALL
  SELECT 'index', format('%L %s %s %L', pg_get_indexdef(i.indexrelid), i.indisclustered,
         i.indisreplident, ic.reloptions)
    FROM pg_index i JOIN rel r ON r.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
  UNION ALL
  SELECT 'view', format('%s %L', r.qn, pg_get_viewdef(r.oid))
    FROM rel r WHERE r.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'trigger', format('%L %s', pg_get_triggerdef(tg.oid), tg.tgenabled)
    FROM pg_trigger tg JOIN rel r ON r.oid = tg.tgrelid WHERE NOT tg.tgisinternal
  UNION ALL
  SELECT 'rule', format('%L %s', pg_get_ruledef(rw.oid), rw.ev_enabled)
    FROM pg_rewrite rw JOIN rel r ON r.oid = rw.ev_class WHERE rw.rulename <> '_RETURN'
  UNION ALL
  SELECT 'policy', format('%s %I %s %s %L %L %L', r.qn, p.polname, p.polcmd, p.polpermissive,
         (SELECT string_agg(CASE WHEN x = 0 THEN 'public' ELSE pg_get_userbyid(x)::text END,
                            ',' ORDER BY 1)
            FROM unnest(p.polroles) x),
         pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy p JOIN rel r ON r.oid = p.polrelid
  UNION ALL
  SELECT 'sequence', format('%s %s %s %s %s %s %s %s', r.qn, s.seqtypid::regtype, s.seqstart,
         s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle)
    FROM pg_sequence s JOIN rel r ON r.oid = s.seqrelid
  UNION ALL
  SELECT 'owned', format('%s %s %s %s', r.qn, d.refobjid::regclass, d.refobjsubid, d.deptype)
    FROM pg_depend d JOIN rel r ON r.oid = d.objid
   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
     AND r.relkind = 'S' AND d.deptype IN ('a', 'i')
  UNION ALL
  SELECT 'function', format('%I.%I(%s) %s %L %L', n.nspname, p.proname,
         pg_get_function_identity_arguments(p.oid), p.prokind, p.proacl,
         CASE WHEN p.prokind = 'a' THEN pg_get_function_result(p.oid)
              ELSE pg_get_functiondef(p.oid) END)
    FROM pg_proc p JOIN ns n ON n.oid = p.pronamespace
   WHERE NOT EXISTS (SELECT 1 FROM extm
                      WHERE extm.classid = 'pg_proc'::regclass AND extm.objid = p.oid)
  UNION ALL
  SELECT 'type', format('%I.%I %s %L %s %L %L %L', n.nspname, t.typname, t.typtype,
         CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
         t.typnotnull, t.typdefault,
         (SELECT string_agg(quote_literal(e.enumlabel), ',' ORDER BY e.enumsortorder)
            FROM pg_enum e WHERE e.enumtypid = t.oid),
         (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg WHERE rg.rngtypid = t.oid))
    FROM pg_type t JOIN ns n ON n.oid = t.typnamespace
   WHERE t.typtype IN ('b', 'd', 'e', 'r', 'm')
     AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
     AND NOT EXISTS (SELECT 1 FROM extm
                      WHERE extm.classid = 'pg_type'::regclass AND extm.objid = t.oid)
  UNION ALL
  SELECT 'statistics', format('%L', pg_get_statisticsobjdef(s.oid))
    FROM pg_statistic_ext s JOIN ns ON ns.oid = s.stxnamespace
  UNION ALL
  SELECT 'event_trigger', format('%I %s %s %s %L', e.evtname, e.evtevent, e.evtfoid::regproc,
         e.evtenabled, e.evttags)
    FROM pg_event_trigger e
)
"""
)

#: The catalog part of the fingerprint: one md5 over the sorted texts.
_CATALOG_SQL = (
    _FINGERPRINT_CTE
    + """SELECT md5(string_agg(k || ' ' || t, E'\\n' ORDER BY k COLLATE "C", t COLLATE "C"))
  FROM items"""
)

# What dagz must know of a database to restore its rows: the tables (as `truncate` sees them:
# plain tables and partitioned roots, no partitions, no extension members) with their copyable
# columns and the enabled states of their user triggers; the sequences; the foreign keys
# between tables. (Which tables have pages comes with the change token.)
_LISTING_SQL = (
    _HEAD_CTE
    + """,
tbl AS (
  SELECT c.oid, c.relkind, c.relname, format('%I.%I', n.nspname, c.relname) AS qn
    FROM pg_class c JOIN ns n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
     AND NOT EXISTS (SELECT 1 FROM extm
                      WHERE extm.classid = 'pg_class'::regclass AND extm.objid = c.oid)
)
SELECT 't' AS kind, t.qn AS a, t.relname::text AS b, t.relkind::text AS c,
       ARRAY(SELECT a.attname::text FROM pg_attribute a
              WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND a.attgenerated = '' ORDER BY a.attnum)
         || ARRAY(SELECT DISTINCT ':' || tg.tgenabled::text FROM pg_trigger tg
                   WHERE tg.tgrelid = t.oid AND NOT tg.tgisinternal AND tg.tgenabled <> 'D')
         AS cols
  FROM tbl t
UNION ALL
SELECT 's', r.qn, NULL, NULL, NULL FROM rel r WHERE r.relkind = 'S'
UNION ALL
SELECT 'k', child.qn, parent.qn, NULL, NULL
  FROM pg_constraint co JOIN tbl child ON child.oid = co.conrelid
  JOIN tbl parent ON parent.oid = co.confrelid
 WHERE co.contype = 'f' AND co.conrelid <> co.confrelid
"""
)


#: Session settings under which rows are rendered as text for the bookkeeping part of the
#: fingerprint (timestamps of django_migrations.applied must not depend on the client's zone).
_TEXT_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, MDY';"
    " SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1;"
    " SET LOCAL bytea_output = 'hex'"
)


@dataclass
class _Table:
    qn: str  # quoted qualified name
    name: str
    kind: str  # 'r' plain, 'p' partitioned root
    cols: list[str]  # columns COPY moves (not generated), in order
    triggers: str  # enabled states of its user triggers: 'O' (origin), 'A' (always), 'R'
    #: False when its main fork has no page at all (then it holds no row, for certain: no
    #: statistics involved); only the others are read (opening 100 tables costs ~25 ms).
    has_pages: bool = True


@dataclass
class _State(warm.Fingerprinted):
    """One database as `provision` sees it, read in one snapshot."""

    token: _Token
    #: The catalog part of its fingerprint (from the stamp while the token holds).
    catalog: str
    tables: list[_Table]
    sequences: list[str]
    fks: list[tuple[str, str]]  # (child, parent) qualified names
    #: Whether the catalog is unchanged since the token it was checked against.
    unchanged: bool = False
    with_rows: set[str] = field(default_factory=set)
    #: md5 of the rows of each table holding rows (``rows="hash"``).
    hashes: dict[str, str] = field(default_factory=dict)
    seqvals: dict[str, tuple[str, str]] = field(default_factory=dict)
    bookkeeping: dict[str, str | None] = field(default_factory=dict)

    def data_tables(self) -> list[_Table]:
        return [t for t in self.tables if t.name not in KEEP_TABLES]


def _read_state(
    conn: DbConnection,
    *,
    rows: str | None,
    seqs: bool,
    since: _Token | None = None,
    catalog: str | None = None,
) -> _State:
    """A database in the caller's transaction (the base's: REPEATABLE READ, so that all of it,
    and the rows copied from it later, come from one snapshot): its change token (checked
    against `since`), its catalog fingerprint (`catalog`, known from a stamp, is used when the
    token holds), its tables, sequences and foreign keys, then the md5 of the bookkeeping
    tables' rows, which tables hold rows — `rows` "exists": one ``EXISTS`` per table; "hash":
    the md5 of each table's rows, for the data part of the fingerprint — and, with `seqs`,
    every sequence's state."""
    token, unchanged, pages = _read_token_pages(conn, since)
    unchanged = unchanged and catalog is not None
    state = _State(token, catalog if unchanged and catalog else "", [], [], [], unchanged)
    if not unchanged:
        state.catalog = str(_fetch(conn, _CATALOG_SQL)[0][0])
    for kind, a, b, c, cols in _fetch(conn, _LISTING_SQL):
        if kind == "t":
            names = [str(x) for x in cols or [] if not str(x).startswith(":")]
            trig = "".join(str(x)[1:] for x in cols or [] if str(x).startswith(":"))
            state.tables.append(_Table(str(a), str(b), str(c), names, trig, str(a) in pages))
        elif kind == "s":
            state.sequences.append(str(a))
        elif kind == "k":
            state.fks.append((str(a), str(b)))
    _read_rows(conn, state, rows, seqs)
    return state


def _from(table: _Table) -> str:
    """``ONLY t`` for a plain table (its inheritance children are tables of their own), ``t``
    for a partitioned root (its partitions are not listed)."""
    return f"{'ONLY ' if table.kind == 'r' else ''}{table.qn}"


def _read_rows(conn: DbConnection, state: _State, rows: str | None, seqs: bool) -> None:
    """Round trip 2 of `_read_state`: one UNION ALL over the tables and sequences."""
    keep = [t for t in state.tables if t.name in KEEP_TABLES]
    data_tables = [t for t in state.data_tables() if t.has_pages] if rows else []
    sequences = state.sequences if seqs else []
    if rows == "hash":
        parts = [
            f"SELECT 'h', {i}, (SELECT md5(string_agg(md5(x::text), '' ORDER BY md5(x::text)))"
            f" FROM {_from(t)} x), NULL"
            for i, t in enumerate(data_tables)
        ]
    else:
        parts = [
            f"SELECT 'r', {i}, NULL, NULL WHERE EXISTS (SELECT 1 FROM {_from(t)})"
            for i, t in enumerate(data_tables)
        ]
    parts += [
        f"SELECT 's', {i}, last_value::text, is_called::text FROM {qn}"
        for i, qn in enumerate(sequences)
    ]
    parts += [
        f"SELECT 'b', {i}, (SELECT md5(string_agg(x::text, E'\\n' ORDER BY x::text COLLATE \"C\"))"
        f" FROM {_from(t)} x), NULL"
        for i, t in enumerate(keep)
    ]
    if not parts:
        return
    for kind, i, a, b in _fetch(conn, "\nUNION ALL ".join(parts)):
        if kind == "s":
            state.seqvals[sequences[int(i)]] = (str(a), str(b))
        elif kind == "b":
            state.bookkeeping[keep[int(i)].qn] = None if a is None else str(a)
        elif kind == "r" or a is not None:
            state.with_rows.add(data_tables[int(i)].qn)
            if kind == "h":
                state.hashes[data_tables[int(i)].qn] = str(a)


def _begin(conn: DbConnection, snapshot: bool) -> None:
    level = " ISOLATION LEVEL REPEATABLE READ" if snapshot else ""
    _execute(conn, f"BEGIN{level}; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; {_TEXT_SETTINGS}")


def fingerprint(db_name: str, **connect_kwargs: object) -> str:
    """The fingerprint of `db_name` (catalog, bookkeeping rows, seed rows), as `provision`
    computes it."""
    what = f"fingerprinting PostgreSQL database {db_name!r} failed"
    with _connection(db_name, what, connect_kwargs) as conn:
        try:
            return _fingerprint(conn).fingerprint
        except Exception as exc:
            raise _error(what, exc, connect_kwargs) from exc


def _fingerprint(
    conn: DbConnection, since: _Token | None = None, catalog: str | None = None
) -> _State:
    """The full state of a database, in one snapshot; its catalog is fingerprinted unless
    `catalog` is known to be its catalog's while the token `since` holds."""
    _begin(conn, snapshot=True)
    try:
        return _read_state(conn, rows="hash", seqs=False, since=since, catalog=catalog)
    finally:
        _rollback(conn)


def _state_json(state: _State) -> dict[str, Any]:
    out = dataclasses.asdict(state)
    out["with_rows"] = sorted(state.with_rows)
    return out


def _state_from_json(data: dict[str, Any]) -> _State:
    state = _State(
        _Token(**data["token"]),
        data["catalog"],
        [_Table(**t) for t in data["tables"]],
        list(data["sequences"]),
        [(str(c), str(p)) for c, p in data["fks"]],
        bool(data["unchanged"]),
    )
    state.with_rows = set(data["with_rows"])
    state.hashes = dict(data["hashes"])
    state.seqvals = {k: (str(v[0]), str(v[1])) for k, v in data["seqvals"].items()}
    state.bookkeeping = dict(data["bookkeeping"])
    return state
