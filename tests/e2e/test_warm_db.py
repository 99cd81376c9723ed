"""Warm start at the level of the database utilities (issue 7): `dagz._warm`, the fingerprints
and `provision` of `dagz._pg` / `dagz._mysql`, and the `dagz db` console command.

Like test_dbutil.py these tests run in this process against the real servers, without the shim
preloaded; every test uses databases of its own (``<run prefix>_wdb_<8 hex>_…``) and drops
them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagz.engines import mysql as _mysql
from dagz.engines import postgres as _pg
from dagz.engines import warm as _warm
from dagz.engines.mysql import batch as _mysql_batch
from dagz.engines.mysql import warm as _mysql_warm
from dagz.engines.postgres import cloning as _pg_cloning
from dagz.engines.postgres import fingerprints as _pg_fingerprints
from dagz.engines.postgres import warm as _pg_warm
from db_fixtures import (  # noqa: F401 - fixtures used by name
    MY,
    PG,
    NameFactory,
    make_name_fixtures,
    pg_databases,
)

from support import unique_name

pg_name, my_name = make_name_fixtures("wdb")


def pg_exec(db: str, *statements: str, **kw: object) -> None:
    conn = _pg.connect(db, **{**PG, **kw})
    try:
        cur = conn.cursor()
        for statement in statements:
            cur.execute(statement)
    finally:
        conn.close()


def pg_query(db: str, query: str) -> list[tuple[Any, ...]]:
    conn = _pg.connect(db, **PG)
    try:
        cur = conn.cursor()
        cur.execute(query)
        return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


def my_exec(db: str | None, *statements: str) -> None:
    conn = _mysql.connect(db, **MY)
    try:
        cur = conn.cursor()
        for statement in statements:
            cur.execute(statement)
    finally:
        conn.close()


def my_query(db: str | None, query: str) -> list[tuple[Any, ...]]:
    conn = _mysql.connect(db, **MY)
    try:
        cur = conn.cursor()
        cur.execute(query)
        return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# _warm: stamps, decisions, the rebuild loop


@pytest.mark.parametrize("base", ["myapp", "my app", "50%_off", "ünï`c\"ode'", "a=b fp=c"])
def test_stamp_round_trip(base: str) -> None:
    fp = "0123456789abcdef0123456789abcdef"
    stamp = _warm.parse_stamp(_warm.stamp_text(base, fp))
    assert stamp is not None
    assert (stamp.base, stamp.fingerprint, stamp.complete) == (base, fp, True)
    assert stamp.created is not None
    building = _warm.parse_stamp(_warm.building_text(base))
    assert building is not None
    assert (building.base, building.fingerprint, building.complete) == (base, None, False)
    empty = _warm.parse_stamp(_warm.stamp_text(base, _warm.NO_BASE))
    assert empty is not None
    assert empty.fingerprint == _warm.NO_BASE


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "a comment of the user",
        "dagz:v1 base=x fp=short created=2025-01-01T00:00:00Z",
        "dagz:v1 base=x fp=0123456789abcdef0123456789abcdef",
        "dagz:v2 base=x fp=0123456789abcdef0123456789abcdef created=2025-01-01T00:00:00Z",
        "dagz:v1 base=x fp=0123456789abcdef0123456789abcdef created=2025-01-01T00:00:00Z junk",
    ],
)
def test_malformed_stamps_are_not_stamps(text: str | None) -> None:
    assert _warm.parse_stamp(text) is None


def test_decide_reasons() -> None:
    fp = "0" * 32
    good = _warm.stamp_text("b", fp)

    def decide(**kw: object) -> str | None:
        args: dict[str, Any] = {
            "base": "b",
            "exists": True,
            "comment": good,
            "base_fp": fp,
            "fresh": False,
            "base_schema_fp": "s",
            "live_schema_fp": "s",
        }
        args.update(kw)
        return _warm.decide(**args)

    assert decide() is None
    assert decide(exists=False) == _warm.MISSING
    assert decide(exists=False, fresh=True) == _warm.MISSING
    assert decide(fresh=True) == _warm.FORCED
    assert decide(comment=None) == _warm.INCOMPLETE
    assert decide(comment=_warm.building_text("b")) == _warm.INCOMPLETE
    assert decide(comment="junk") == _warm.INCOMPLETE
    assert decide(base_fp="1" * 32) == _warm.CHANGED
    assert decide(base="other") == _warm.CHANGED
    assert decide(live_schema_fp="t") == _warm.DRIFTED
    assert decide(live_schema_fp=None) is None


def test_rebuild_loop() -> None:
    """The recorded fingerprint is always the copy's; the loop clones again only while the base
    keeps changing, and says so when it gives up or when the copy never matches."""
    clones: list[int] = []

    def run(copies: list[str], bases: list[str], first: str) -> tuple[str, str, int]:
        clones.clear()
        copies_it, bases_it = iter(copies), iter(bases)
        fp, note = _warm.rebuild_loop(
            first, lambda: clones.append(1), lambda: next(copies_it), lambda: next(bases_it)
        )
        return fp, note, len(clones)

    assert run(["a"], [], "a") == ("a", "", 1)
    # The base changed before the clone: the copy has the new state.
    assert run(["b"], ["b"], "a") == ("b", "", 1)
    # The base changed during the clone: clone again.
    assert run(["x", "c"], ["c", "c"], "a") == ("c", "", 2)
    # The copy never matches an unchanged base: keep it, say it is rebuilt every run.
    fp, note, n = run(["z"], ["a"], "a")
    assert (fp, n) == ("z", 1)
    assert "rebuilt on every run" in note
    # The base never stops changing.
    fp, note, n = run(["x1", "x2", "x3"], ["b1", "b2", "b3"], "a")
    assert (fp, n) == ("x3", _warm.REBUILD_ATTEMPTS)
    assert "changed during each" in note


def test_outcome_wording() -> None:
    fp = "0123456789abcdef0123456789abcdef"
    assert _warm.Outcome("kept", None, fp).describe() == "kept (fingerprint 0123456789ab)"
    assert _warm.Outcome("rebuilt", "changed", fp).describe().startswith("rebuilt (changed)")
    assert "incomplete" in _warm.Outcome("rebuilt", "incomplete", fp).describe()


# --------------------------------------------------------------------------------------------
# PostgreSQL

PG_RICH = [
    "CREATE TYPE mood AS ENUM ('ok', 'meh')",
    "CREATE DOMAIN posint AS int CHECK (VALUE > 0)",
    "CREATE SEQUENCE free_seq START 100",
    # Never called, but restarted elsewhere: (700, is_called false), which a view shows as NULL.
    "CREATE SEQUENCE restarted_seq",
    "ALTER SEQUENCE restarted_seq RESTART WITH 700",
    "CREATE TABLE author (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " name text NOT NULL, mood mood DEFAULT 'ok')",
    "CREATE TABLE book (id serial PRIMARY KEY, author_id int NOT NULL REFERENCES author (id),"
    " title text, title_upper text, pages posint, CHECK (title <> ''))",
    "CREATE TABLE audit (id serial PRIMARY KEY, msg text)",
    "CREATE TABLE untouched (id int PRIMARY KEY, parent int REFERENCES untouched (id))",
    "CREATE TABLE ev (id int, at date) PARTITION BY RANGE (at)",
    "CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "CREATE TABLE gen (a int, b int GENERATED ALWAYS AS (a * 2) STORED)",
    "CREATE INDEX book_title_idx ON book (lower(title))",
    "CREATE VIEW book_titles AS SELECT a.name, b.title FROM book b JOIN author a"
    " ON a.id = b.author_id",
    "CREATE FUNCTION upper_title() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN NEW.title_upper := upper(NEW.title); RETURN NEW; END $$",
    "CREATE TRIGGER book_upper BEFORE INSERT OR UPDATE ON book"
    " FOR EACH ROW EXECUTE FUNCTION upper_title()",
    "CREATE FUNCTION audit_author() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN INSERT INTO audit (msg) VALUES ('author ' || NEW.name); RETURN NEW; END $$",
    "CREATE TRIGGER author_audit AFTER INSERT ON author"
    " FOR EACH ROW EXECUTE FUNCTION audit_author()",
    "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
    "INSERT INTO alembic_version VALUES ('abc')",
    "INSERT INTO author (name) VALUES ('Ann'), ('Bob')",
    "INSERT INTO book (author_id, title, pages) VALUES (1, 'first', 10), (2, 'second', 20)",
    # A row inserted and deleted: book's sequence is past the highest id.
    "INSERT INTO book (author_id, title, pages) VALUES (1, 'gone', 1)",
    "DELETE FROM book WHERE title = 'gone'",
    "INSERT INTO ev VALUES (1, '2024-05-01')",
    "INSERT INTO gen (a) VALUES (21)",
    "SELECT nextval('free_seq')",
]

#: (what, statement): each changes the base's fingerprint.
PG_CHANGES = [
    ("add a column", "ALTER TABLE book ADD COLUMN isbn text"),
    ("add an index", "CREATE INDEX book_pages_idx ON book (pages)"),
    ("change a default", "ALTER TABLE author ALTER COLUMN mood SET DEFAULT 'meh'"),
    ("change a migration row", "UPDATE alembic_version SET version_num = 'def'"),
    ("add a seed row", "INSERT INTO author (name) VALUES ('Cy')"),
    ("change a seed value", "UPDATE book SET pages = 11 WHERE id = 1"),
    (
        "change a view",
        "CREATE OR REPLACE VIEW book_titles AS SELECT a.name, b.title, b.pages FROM book b"
        " JOIN author a ON a.id = b.author_id",
    ),
    (
        "change a trigger function",
        "CREATE OR REPLACE FUNCTION upper_title() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN NEW.title_upper := lower(NEW.title); RETURN NEW; END $$",
    ),
    ("disable a trigger", "ALTER TABLE book DISABLE TRIGGER book_upper"),
    ("add an enum label", "ALTER TYPE mood ADD VALUE 'wow'"),
    ("add a check constraint", "ALTER TABLE audit ADD CONSTRAINT audit_msg CHECK (msg <> '')"),
    (
        "change a foreign key action",
        "ALTER TABLE book DROP CONSTRAINT book_author_id_fkey, ADD CONSTRAINT"
        " book_author_id_fkey FOREIGN KEY (author_id) REFERENCES author (id) ON DELETE CASCADE",
    ),
    ("change a column type", "ALTER TABLE audit ALTER COLUMN msg TYPE varchar(200)"),
    ("rename a column", "ALTER TABLE gen RENAME COLUMN a TO aa"),
    ("change a sequence", "ALTER SEQUENCE free_seq INCREMENT BY 5"),
    ("add a schema", "CREATE SCHEMA extra"),
    ("drop a trigger", "DROP TRIGGER author_audit ON author"),
    ("drop an index", "DROP INDEX book_title_idx"),
    ("grant", "GRANT SELECT ON book TO PUBLIC"),
    ("table options", "ALTER TABLE audit SET (fillfactor = 50)"),
]


def pg_base(pg_name: NameFactory, tag: str = "base", schema: list[str] = PG_RICH) -> str:
    base = pg_name(tag)
    pg_exec("postgres", f'CREATE DATABASE "{base}"')
    pg_exec(base, *schema)
    return base


def pg_dump(db: str) -> dict[str, Any]:
    """Every table's rows (sorted) and every sequence's state (last_value, is_called)."""
    tables = [
        r[0]
        for r in pg_query(
            db,
            "SELECT relname FROM pg_class WHERE relkind = 'r'"
            " AND relnamespace = 'public'::regnamespace ORDER BY 1",
        )
    ]
    seqs = [
        r[0]
        for r in pg_query(
            db,
            "SELECT relname FROM pg_class WHERE relkind = 'S'"
            " AND relnamespace = 'public'::regnamespace ORDER BY 1",
        )
    ]
    return {
        "tables": {t: sorted(map(repr, pg_query(db, f'SELECT * FROM "{t}"'))) for t in tables},
        "sequences": {s: pg_query(db, f'SELECT last_value, is_called FROM "{s}"') for s in seqs},
    }


def pg_oid(db: str) -> int:
    rows = pg_query("postgres", f"SELECT oid::bigint FROM pg_database WHERE datname = '{db}'")
    assert rows, f"{db} does not exist"
    return int(rows[0][0])


def pg_comment(db: str) -> str | None:
    rows = pg_query(
        "postgres",
        f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{db}'",
    )
    return rows[0][0] if rows else None


def test_pg_fingerprint_of_a_copy_and_of_changes(pg_name: NameFactory) -> None:
    base = pg_base(pg_name)
    target = pg_name("copy")
    assert _pg.clone(base, target, **PG) == "cloned"
    first = _pg.fingerprint(base, **PG)
    assert _pg.fingerprint(target, **PG) == first
    # Not part of the fingerprint: sequence values, statistics, comments, other sessions' temps.
    pg_exec(base, "SELECT nextval('free_seq')", "ANALYZE", "COMMENT ON TABLE book IS 'books'")
    assert _pg.fingerprint(base, **PG) == first
    # Content, not history: an index created and dropped again changes nothing.
    pg_exec(base, "CREATE INDEX tmp_idx ON audit (msg)")
    assert _pg.fingerprint(base, **PG) != first
    pg_exec(base, "DROP INDEX tmp_idx")
    assert _pg.fingerprint(base, **PG) == first
    seen = {first: "start"}
    for what, statement in PG_CHANGES:
        pg_exec(base, statement)
        fp = _pg.fingerprint(base, **PG)
        assert fp not in seen, f"{what}: same fingerprint as after {seen.get(fp)}"
        seen[fp] = what


def test_pg_provision_keeps_and_restores_the_base_rows(
    pg_driver: str, pg_name: NameFactory
) -> None:
    base = pg_base(pg_name)
    target = pg_name("jw01")
    first = _pg.provision(base, target, **PG)
    assert (first.action, first.reason) == ("rebuilt", _warm.MISSING)
    assert first.fingerprint == _pg.fingerprint(base, **PG) == _pg.fingerprint(target, **PG)
    stamp = _warm.parse_stamp(pg_comment(target))
    assert stamp is not None
    assert (stamp.base, stamp.fingerprint) == (base, first.fingerprint)
    oid = pg_oid(target)
    want = pg_dump(base)
    assert pg_dump(target) == want

    # What a test run leaves behind: rows everywhere, seed rows gone, counters advanced.
    pg_exec(
        target,
        "INSERT INTO author (name) VALUES ('Zed')",
        "DELETE FROM book WHERE id = 1",
        "INSERT INTO gen (a) VALUES (5)",
        "INSERT INTO ev VALUES (2, '2024-06-01')",
        "INSERT INTO untouched VALUES (1, NULL), (2, 1)",
        "SELECT nextval('free_seq'), nextval('free_seq')",
        "SELECT setval('book_id_seq', 500)",
        "SELECT nextval('restarted_seq')",
    )
    assert pg_dump(target) != want

    kept = _pg.provision(base, target, **PG)
    assert (kept.action, kept.reason, kept.fingerprint) == ("kept", None, first.fingerprint)
    assert pg_oid(target) == oid
    # Exactly the base's rows and sequence states; the copy fired no trigger (audit holds the
    # base's two rows, written by the trigger in the base, not four).
    assert pg_dump(target) == want
    assert set(kept.restored) == {
        "public.author",
        "public.book",
        "public.audit",
        "public.ev",
        "public.gen",
    }
    # The triggers, the view and the foreign key work in the kept database.
    pg_exec(target, "INSERT INTO book (author_id, title, pages) VALUES (2, 'third', 3)")
    assert pg_query(target, "SELECT id, title_upper FROM book WHERE title = 'third'") == [
        (4, "THIRD")
    ]
    assert len(pg_query(target, "SELECT * FROM book_titles")) == 3
    with pytest.raises(Exception, match="foreign key"):
        pg_exec(target, "INSERT INTO book (author_id, title) VALUES (99, 'x')")
    # Kept again with nothing to restore but the base's rows.
    assert _pg.provision(base, target, **PG).action == "kept"
    assert pg_dump(target)["tables"] == want["tables"]


@pytest.mark.parametrize(("what", "statement"), PG_CHANGES)
def test_pg_provision_rebuilds_after_a_change(
    pg_name: NameFactory, what: str, statement: str
) -> None:
    base = pg_base(pg_name)
    target = pg_name("jw00")
    _pg.provision(base, target, **PG)
    oid = pg_oid(target)
    pg_exec(base, statement)
    out = _pg.provision(base, target, **PG)
    assert (out.action, out.reason) == ("rebuilt", _warm.CHANGED), what
    assert pg_oid(target) != oid
    assert pg_dump(target) == pg_dump(base)
    assert out.fingerprint == _pg.fingerprint(base, **PG) == _pg.fingerprint(target, **PG)


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE book ADD COLUMN junk int",
        "CREATE TABLE junk (x int)",
        "UPDATE alembic_version SET version_num = 'downgraded'",
        "DROP TRIGGER book_upper ON book",
    ],
)
def test_pg_provision_rebuilds_a_drifted_worker(pg_name: NameFactory, statement: str) -> None:
    """A test that changed the worker's own schema (or its migration rows): rebuilt."""
    base = pg_base(pg_name)
    target = pg_name("jw00")
    _pg.provision(base, target, **PG)
    pg_exec(target, statement)
    out = _pg.provision(base, target, **PG)
    assert (out.action, out.reason) == ("rebuilt", _warm.DRIFTED)
    assert _pg.fingerprint(target, **PG) == _pg.fingerprint(base, **PG)


@pytest.mark.parametrize(
    ("comment", "reason"),
    [
        (None, _warm.INCOMPLETE),
        ("building", _warm.INCOMPLETE),
        ("a comment of the user", _warm.INCOMPLETE),
        ("other base", _warm.CHANGED),
    ],
)
def test_pg_provision_never_trusts_an_unfinished_stamp(
    pg_name: NameFactory, comment: str | None, reason: str
) -> None:
    base = pg_base(pg_name, schema=PG_RICH[:6])
    target = pg_name("jw00")
    out = _pg.provision(base, target, **PG)
    if comment is None:
        pg_exec("postgres", f'COMMENT ON DATABASE "{target}" IS NULL')
    elif comment == "building":
        pg_exec("postgres", f"COMMENT ON DATABASE \"{target}\" IS '{_warm.building_text(base)}'")
    elif comment == "other base":
        text = _warm.stamp_text("elsewhere", out.fingerprint)
        pg_exec("postgres", f"COMMENT ON DATABASE \"{target}\" IS '{text}'")
    else:
        pg_exec("postgres", f"COMMENT ON DATABASE \"{target}\" IS '{comment}'")
    again = _pg.provision(base, target, **PG)
    assert (again.action, again.reason) == ("rebuilt", reason)
    assert _pg.provision(base, target, **PG).action == "kept"


def test_pg_provision_fresh_and_missing_base(pg_name: NameFactory) -> None:
    base = pg_base(pg_name, schema=PG_RICH[:6])
    target = pg_name("jw00")
    _pg.provision(base, target, **PG)
    oid = pg_oid(target)
    out = _pg.provision(base, target, fresh=True, **PG)
    assert (out.action, out.reason) == ("rebuilt", _warm.FORCED)
    assert pg_oid(target) != oid

    nobase, empty = pg_name("nobase"), pg_name("jw01")
    for _ in range(2):
        out = _pg.provision(nobase, empty, **PG)
        assert out.action == "empty"
        stamp = _warm.parse_stamp(pg_comment(empty))
        assert stamp is not None
        assert (stamp.base, stamp.fingerprint) == (nobase, _warm.NO_BASE)
        assert pg_query(empty, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [
            (0,)
        ]
        pg_exec(empty, "CREATE TABLE junk (x int)")


def test_pg_base_changed_between_decision_and_clone(
    pg_name: NameFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stamp records the copy's fingerprint, which is the base's new one; the next run
    keeps it."""
    base = pg_base(pg_name)
    target = pg_name("jw00")
    real = _pg_cloning._create_retrying
    calls: list[str] = []

    def change_first(*args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        if not calls:
            pg_exec(base, "ALTER TABLE audit ADD COLUMN late text")
        calls.append("create")
        real(*args, **kwargs)

    monkeypatch.setattr(_pg_cloning, "_create_retrying", change_first)
    out = _pg.provision(base, target, **PG)
    assert out.action == "rebuilt"
    assert out.fingerprint == _pg.fingerprint(base, **PG) == _pg.fingerprint(target, **PG)
    monkeypatch.setattr(_pg_cloning, "_create_retrying", real)
    assert _pg.provision(base, target, **PG).action == "kept"


@pytest.fixture
def pg_role() -> Iterator[str]:
    """A role that may log in and create databases, but is no superuser."""
    role = unique_name("role")
    pg_exec("postgres", f'CREATE ROLE "{role}" LOGIN CREATEDB')
    try:
        yield role
    finally:
        dbs = pg_query(
            "postgres",
            f"SELECT datname FROM pg_database WHERE datdba = '{role}'::regrole",
        )
        for (db,) in dbs:
            _pg.drop(db, **PG)
        pg_exec("postgres", f'DROP ROLE "{role}"')


def test_pg_keep_without_superuser(pg_name: NameFactory, pg_role: str) -> None:
    """No session_replication_role: tables without triggers are restored parents first; a table
    with a user trigger cannot be restored faithfully, so the copy is rebuilt instead."""
    kw = {**PG, "user": pg_role}
    base, target = pg_name("nsbase"), pg_name("nsjw00")
    pg_exec("postgres", f'CREATE DATABASE "{base}"', user=pg_role)
    pg_exec(
        base,
        # Names sort children first: the order must come from the foreign keys.
        "CREATE TABLE c_parent (id int PRIMARY KEY)",
        "CREATE TABLE b_child (id int PRIMARY KEY, p int REFERENCES c_parent (id))",
        "CREATE TABLE a_grandchild (id serial PRIMARY KEY, c int REFERENCES b_child (id))",
        "INSERT INTO c_parent VALUES (1), (2)",
        "INSERT INTO b_child VALUES (10, 1), (20, 2)",
        "INSERT INTO a_grandchild (c) VALUES (10), (20)",
        user=pg_role,
    )
    assert _pg.provision(base, target, **kw).action == "rebuilt"
    pg_exec(target, "DELETE FROM a_grandchild", "INSERT INTO a_grandchild (c) VALUES (10)")
    out = _pg.provision(base, target, **kw)
    assert out.action == "kept", out.describe()
    assert pg_dump(target) == pg_dump(base)

    pg_exec(
        base,
        "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        "CREATE TRIGGER c_noop BEFORE INSERT ON c_parent FOR EACH ROW EXECUTE FUNCTION noop()",
        user=pg_role,
    )
    assert _pg.provision(base, target, **kw).reason == _warm.CHANGED
    out = _pg.provision(base, target, **kw)
    assert (out.action, out.reason) == ("rebuilt", _warm.UNSUPPORTED)
    assert "session_replication_role" in out.detail
    assert pg_dump(target) == pg_dump(base)


def test_pg_token_that_no_longer_holds_is_refreshed(pg_name: NameFactory) -> None:
    """A catalog write that changes nothing the fingerprint covers (a column's statistics
    target) breaks the base's change token: the catalog is fingerprinted again, equal, the
    worker database is kept and its stamp gets fresh tokens, used by the next run."""
    base = pg_base(pg_name)
    target = pg_name("jw00")
    _pg.provision(base, target, **PG)
    first = _warm.parse_stamp(pg_comment(target))
    assert first is not None
    assert set(first.extra) == {"cat", "bt", "wt"}
    assert _pg.provision(base, target, **PG).action == "kept"
    assert pg_comment(target) == _warm.stamp_text(
        base, str(first.fingerprint), first.created, **first.extra
    ), "the tokens held: the stamp is left alone"

    pg_exec(base, "ALTER TABLE book ALTER COLUMN title SET STATISTICS 200")
    calls: list[str] = []
    real = _pg_fingerprints._CATALOG_SQL
    try:
        _pg_fingerprints._CATALOG_SQL = real + " "  # same query, and a way to count it
        orig_fetch = _pg_fingerprints._fetch

        def counting(conn: Any, sql: str, params: Any = None) -> Any:  # noqa: ANN401
            if sql == _pg_fingerprints._CATALOG_SQL:
                calls.append("catalog")
            return orig_fetch(conn, sql, params)

        _pg_fingerprints._fetch = counting  # type: ignore[assignment]
        out = _pg.provision(base, target, **PG)
        assert out.action == "kept"
        assert calls == ["catalog"]
        second = _warm.parse_stamp(pg_comment(target))
        assert second is not None
        assert second.fingerprint == first.fingerprint
        assert second.extra["cat"] == first.extra["cat"]
        assert second.extra["bt"] != first.extra["bt"]
        assert second.created == first.created
        calls.clear()
        assert _pg.provision(base, target, **PG).action == "kept"
        assert calls == []
    finally:
        _pg_fingerprints._CATALOG_SQL = real
        _pg_fingerprints._fetch = orig_fetch  # type: ignore[assignment]


def test_pg_run_cache_reads_the_base_once(
    pg_name: NameFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """In a run with several workers the first one reads the base (state and seed rows); the
    others restore the same snapshot without connecting to it. Over the size limit, each
    worker reads the base itself."""
    base = pg_base(pg_name)
    targets = [pg_name(f"jw0{i}") for i in range(3)]
    for target in targets:
        _pg.provision(base, target, **PG)
        pg_exec(target, "INSERT INTO author (name) VALUES ('left over')")
    reads: list[str] = []
    real = _pg_warm._read_base_direct

    def counted(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        reads.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(_pg_warm, "_read_base_direct", counted)
    monkeypatch.setenv(_warm.RUN_DIR_ENV, str(tmp_path / "run1"))
    (tmp_path / "run1").mkdir()
    outs = [_pg.provision(base, target, **PG) for target in targets[:2]]
    # The base changes during the run: the run's workers all restore the snapshot of the first.
    pg_exec(base, "INSERT INTO audit (msg) VALUES ('later')")
    outs.append(_pg.provision(base, targets[2], **PG))
    assert [o.action for o in outs] == ["kept"] * 3
    assert reads == [base]
    dumps = [pg_dump(t)["tables"] for t in targets]
    assert dumps[0] == dumps[1] == dumps[2]
    assert "'later'" not in repr(dumps[2]["audit"])

    # The next run sees the change: rebuilt.
    monkeypatch.setenv(_warm.RUN_DIR_ENV, str(tmp_path / "run2"))
    (tmp_path / "run2").mkdir()
    assert _pg.provision(base, targets[0], **PG).reason == _warm.CHANGED
    # Seed rows over the limit: every worker reads the base itself.
    monkeypatch.setattr(_pg_warm, "RUN_CACHE_BYTES", 10)
    monkeypatch.setenv(_warm.RUN_DIR_ENV, str(tmp_path / "run3"))
    (tmp_path / "run3").mkdir()
    reads.clear()
    assert [_pg.provision(base, t, **PG).action for t in targets[:1]] == ["kept"]
    assert [_pg.provision(base, t, **PG).action for t in targets[1:]] == ["rebuilt"] * 2
    assert reads == [base] * 3
    assert pg_dump(targets[0]) == pg_dump(base)


# --------------------------------------------------------------------------------------------
# MySQL / MariaDB

MY_RICH = [
    "CREATE TABLE author (id int AUTO_INCREMENT PRIMARY KEY, name varchar(20)) ENGINE=InnoDB",
    "CREATE TABLE book (id int AUTO_INCREMENT PRIMARY KEY, author_id int NOT NULL,"
    " title varchar(40), title_len int AS (CHAR_LENGTH(title)) VIRTUAL,"
    " CONSTRAINT book_author FOREIGN KEY (author_id) REFERENCES author (id)) ENGINE=InnoDB",
    "CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, msg varchar(60)) ENGINE=InnoDB",
    "CREATE TABLE zero_id (id int AUTO_INCREMENT PRIMARY KEY, v int) ENGINE=InnoDB",
    "CREATE TABLE gone (id int AUTO_INCREMENT PRIMARY KEY, v int) ENGINE=InnoDB",
    "CREATE TABLE untouched (id int PRIMARY KEY) ENGINE=InnoDB",
    "CREATE TABLE schema_migrations (version varchar(20) PRIMARY KEY) ENGINE=InnoDB",
    "CREATE FUNCTION shout(s varchar(40)) RETURNS varchar(40) DETERMINISTIC RETURN UPPER(s)",
    "CREATE PROCEDURE log_msg(m varchar(60)) INSERT INTO audit (msg) VALUES (m)",
    "CREATE VIEW loud AS SELECT shout(title) AS t FROM book",
    "CREATE TRIGGER book_audit AFTER INSERT ON book FOR EACH ROW"
    " CALL log_msg(CONCAT('book ', NEW.title))",
    "CREATE TRIGGER book_lower BEFORE INSERT ON book FOR EACH ROW"
    " BEGIN SET NEW.title = LOWER(NEW.title); END",
    "CREATE TRIGGER book_deleted AFTER DELETE ON book FOR EACH ROW"
    " INSERT INTO audit (msg) VALUES (CONCAT('deleted ', OLD.title))",
    "INSERT INTO author (name) VALUES ('Ann'), ('Bob')",
    "INSERT INTO book (author_id, title) VALUES (1, 'First'), (2, 'Second'), (1, 'Gone')",
    "DELETE FROM book WHERE title = 'gone'",
    "INSERT INTO gone (v) VALUES (1), (2), (3)",
    "DELETE FROM gone",
    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')",
    "INSERT INTO zero_id VALUES (0, 10), (5, 50)",
    "INSERT INTO schema_migrations VALUES ('001')",
]

MY_CHANGES = [
    ("add a column", "ALTER TABLE book ADD COLUMN isbn varchar(20)"),
    ("add an index", "CREATE INDEX audit_msg ON audit (msg)"),
    ("change a default", "ALTER TABLE zero_id ALTER COLUMN v SET DEFAULT 7"),
    ("add a migration row", "INSERT INTO schema_migrations VALUES ('002')"),
    ("add a seed row", "INSERT INTO author (name) VALUES ('Cy')"),
    ("change a seed value", "UPDATE zero_id SET v = 11 WHERE id = 0"),
    ("change a view", "CREATE OR REPLACE VIEW loud AS SELECT shout(title) AS t, id FROM book"),
    (
        "change a routine",
        "CREATE OR REPLACE FUNCTION shout(s varchar(40)) RETURNS varchar(40) DETERMINISTIC"
        " RETURN CONCAT(UPPER(s), '!')",
    ),
    ("drop a trigger", "DROP TRIGGER book_lower"),
    ("change a column type", "ALTER TABLE audit MODIFY msg varchar(200)"),
    (
        "change a foreign key action",
        "ALTER TABLE book DROP FOREIGN KEY book_author, ADD CONSTRAINT book_author_c"
        " FOREIGN KEY (author_id) REFERENCES author (id) ON DELETE CASCADE",
    ),
]


def my_base(my_name: NameFactory, tag: str = "base") -> str:
    base = my_name(tag)
    my_exec(None, f"CREATE DATABASE `{base}`")
    conn = _mysql.connect(base, **MY)
    try:
        cur = conn.cursor()
        for statement in MY_RICH:
            cur.execute(statement)
    finally:
        conn.close()
    return base


def my_dump(db: str) -> dict[str, Any]:
    """Every table's rows (sorted), auto-increment counters, triggers in their order, routines."""
    lit = f"'{db}'"
    tables = my_query(
        None,
        "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = {lit} AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
    )
    return {
        "tables": {
            t: sorted(map(repr, my_query(db, f"SELECT * FROM `{t}`"))) for t, _auto in tables
        },
        "counters": tables,
        "triggers": my_query(
            None,
            "SELECT EVENT_OBJECT_TABLE, EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER,"
            " TRIGGER_NAME FROM information_schema.TRIGGERS"
            f" WHERE TRIGGER_SCHEMA = {lit} ORDER BY 1, 2, 3, 4",
        ),
        "routines": my_query(
            None,
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES"
            f" WHERE ROUTINE_SCHEMA = {lit} ORDER BY 1, 2",
        ),
    }


def my_table_id(db: str, table: str) -> int:
    rows = my_query(
        None,
        f"SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = '{db}/{table}'",
    )
    assert rows, f"{db}.{table} does not exist"
    return int(rows[0][0])


def my_comment(db: str) -> str | None:
    rows = my_query(
        None, f"SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}'"
    )
    return str(rows[0][0]) if rows and rows[0][0] else None


def test_my_clone_copies_routines(my_name: NameFactory) -> None:
    base, target = my_base(my_name), my_name("copy")
    assert _mysql.clone(base, target, **MY) == "cloned"
    assert my_dump(target)["routines"] == [("FUNCTION", "shout"), ("PROCEDURE", "log_msg")]
    # The view calls the function, the trigger calls the procedure, both in the copy.
    assert sorted(my_query(target, "SELECT t FROM loud")) == [("FIRST",), ("SECOND",)]
    my_exec(target, "INSERT INTO book (author_id, title) VALUES (2, 'Third')")
    assert my_query(target, "SELECT msg FROM audit ORDER BY id DESC LIMIT 1") == [("book third",)]


def test_my_fingerprint_of_a_copy_and_of_changes(my_name: NameFactory) -> None:
    base = my_base(my_name)
    target = my_name("copy")
    assert _mysql.clone(base, target, **MY) == "cloned"
    first = _mysql.fingerprint(base, **MY)
    assert _mysql.fingerprint(target, **MY) == first
    my_exec(base, "ANALYZE TABLE book", "ALTER TABLE gone AUTO_INCREMENT = 50")
    assert _mysql.fingerprint(base, **MY) == first
    my_exec(base, "CREATE INDEX tmp_idx ON audit (msg)")
    assert _mysql.fingerprint(base, **MY) != first
    my_exec(base, "DROP INDEX tmp_idx ON audit")
    assert _mysql.fingerprint(base, **MY) == first
    seen = {first: "start"}
    for what, statement in MY_CHANGES:
        my_exec(base, statement)
        fp = _mysql.fingerprint(base, **MY)
        assert fp not in seen, f"{what}: same fingerprint as after {seen.get(fp)}"
        seen[fp] = what


def test_my_provision_keeps_and_restores_the_base_rows(
    my_driver: str, my_name: NameFactory
) -> None:
    base = my_base(my_name)
    target = my_name("jw01")
    first = _mysql.provision(base, target, **MY)
    assert (first.action, first.reason) == ("rebuilt", _warm.MISSING)
    assert first.fingerprint == _mysql.fingerprint(base, **MY) == _mysql.fingerprint(target, **MY)
    stamp = _warm.parse_stamp(my_comment(target))
    assert stamp is not None
    assert (stamp.base, stamp.fingerprint) == (base, first.fingerprint)
    want = my_dump(base)
    assert my_dump(target) == want
    untouched = my_table_id(target, "untouched")

    my_exec(
        target,
        "INSERT INTO book (author_id, title) VALUES (2, 'Left')",  # fires both insert triggers
        "DELETE FROM book WHERE id = 1",  # fires the delete trigger
        "INSERT INTO author (name) VALUES ('Zed')",
        "INSERT INTO gone (v) VALUES (9)",
        "INSERT INTO zero_id (v) VALUES (60)",
        "DELETE FROM schema_migrations WHERE version = 'x'",
    )
    assert my_dump(target) != want

    kept = _mysql.provision(base, target, **MY)
    assert (kept.action, kept.reason, kept.fingerprint) == ("kept", None, first.fingerprint)
    assert my_table_id(target, "untouched") == untouched
    # Exactly the base's rows (the explicit 0 id included), counters, triggers in their order;
    # restoring fired no trigger (audit holds the base's rows only).
    assert my_dump(target) == want
    assert my_comment(target) is not None
    assert _warm.parse_stamp(my_comment(target)) == _warm.parse_stamp(my_comment(target))
    stamp = _warm.parse_stamp(my_comment(target))
    assert stamp is not None
    assert stamp.fingerprint == first.fingerprint
    # The triggers work once each in the kept database; the foreign key holds.
    my_exec(target, "INSERT INTO book (author_id, title) VALUES (2, 'Third')")
    assert my_query(target, "SELECT title FROM book WHERE title = 'third'") == [("third",)]
    assert my_query(target, "SELECT COUNT(*) FROM audit WHERE msg = 'book third'") == [(1,)]
    with pytest.raises(Exception, match="foreign key constraint fails"):
        my_exec(target, "INSERT INTO book (author_id, title) VALUES (99, 'nope')")


@pytest.mark.parametrize(("what", "statement"), MY_CHANGES[:6])
def test_my_provision_rebuilds_after_a_change(
    my_name: NameFactory, what: str, statement: str
) -> None:
    base = my_base(my_name)
    target = my_name("jw00")
    _mysql.provision(base, target, **MY)
    table_id = my_table_id(target, "untouched")
    my_exec(base, statement)
    out = _mysql.provision(base, target, **MY)
    assert (out.action, out.reason) == ("rebuilt", _warm.CHANGED), what
    assert my_table_id(target, "untouched") != table_id
    assert my_dump(target) == my_dump(base)
    assert out.fingerprint == _mysql.fingerprint(base, **MY) == _mysql.fingerprint(target, **MY)


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE book ADD COLUMN junk int",
        "DROP TRIGGER book_audit",
        "INSERT INTO schema_migrations VALUES ('downgrade')",
    ],
)
def test_my_provision_rebuilds_a_drifted_worker(my_name: NameFactory, statement: str) -> None:
    base = my_base(my_name)
    target = my_name("jw00")
    _mysql.provision(base, target, **MY)
    my_exec(target, statement)
    out = _mysql.provision(base, target, **MY)
    assert (out.action, out.reason) == ("rebuilt", _warm.DRIFTED)
    assert _mysql.fingerprint(target, **MY) == _mysql.fingerprint(base, **MY)


def test_my_provision_stamps_fresh_missing_and_unsupported(
    my_name: NameFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = my_base(my_name)
    target = my_name("jw00")
    _mysql.provision(base, target, **MY)
    my_exec(None, f"ALTER DATABASE `{target}` COMMENT = '{_warm.building_text(base)}'")
    out = _mysql.provision(base, target, **MY)
    assert (out.action, out.reason) == ("rebuilt", _warm.INCOMPLETE)
    my_exec(None, f"ALTER DATABASE `{target}` COMMENT = ''")
    assert _mysql.provision(base, target, **MY).reason == _warm.INCOMPLETE
    assert _mysql.provision(base, target, **MY).action == "kept"
    out = _mysql.provision(base, target, fresh=True, **MY)
    assert (out.action, out.reason) == ("rebuilt", _warm.FORCED)

    nobase, empty = my_name("nobase"), my_name("jw01")
    for _ in range(2):
        assert _mysql.provision(nobase, empty, **MY).action == "empty"
        stamp = _warm.parse_stamp(my_comment(empty))
        assert stamp is not None
        assert stamp.fingerprint == _warm.NO_BASE
        my_exec(empty, "CREATE TABLE junk (x int)")

    monkeypatch.setattr(_mysql_warm, "_supports_stamps", lambda conn: False)
    out = _mysql.provision(base, target, **MY)
    assert (out.action, out.reason) == ("rebuilt", _warm.UNSUPPORTED)
    assert my_dump(target) == my_dump(base)


def test_my_base_changed_during_the_keep(
    my_name: NameFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MySQL DDL is not transactional: the base is fingerprinted again after the rows were
    restored, and a change meanwhile rebuilds the copy."""
    base = my_base(my_name)
    target = my_name("jw00")
    _mysql.provision(base, target, **MY)
    real = _mysql_batch._run
    done: list[bool] = []

    def change_during_keep(conn: Any, statements: list[str]) -> Any:  # noqa: ANN401
        if not done and any(s.startswith("START TRANSACTION") for s in statements):
            done.append(True)
            my_exec(base, "ALTER TABLE audit ADD COLUMN late int")
        return real(conn, statements)

    monkeypatch.setattr(_mysql_batch, "_run", change_during_keep)
    out = _mysql.provision(base, target, **MY)
    assert (out.action, out.reason) == ("rebuilt", _warm.CHANGED)
    assert "while" in out.detail
    assert out.fingerprint == _mysql.fingerprint(base, **MY) == _mysql.fingerprint(target, **MY)


def test_my_run_cache_reads_the_base_once(
    my_name: NameFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = my_base(my_name)
    targets = [my_name(f"jw0{i}") for i in range(3)]
    for target in targets:
        _mysql.provision(base, target, **MY)
        my_exec(target, "INSERT INTO author (name) VALUES ('left over')")
    reads: list[str] = []
    real = _mysql_warm._read_base

    def counted(conn: Any, name: str) -> Any:  # noqa: ANN401
        reads.append(name)
        return real(conn, name)

    monkeypatch.setattr(_mysql_warm, "_read_base", counted)
    monkeypatch.setenv(_warm.RUN_DIR_ENV, str(tmp_path))
    outs = [_mysql.provision(base, target, **MY) for target in targets]
    assert [o.action for o in outs] == ["kept"] * 3
    assert reads == [base]
    want = my_dump(base)
    assert all(my_dump(t) == want for t in targets)


# --------------------------------------------------------------------------------------------
# dagz db list / drop


def _dagz(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagz.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_lists_and_drops_the_worker_databases(
    pg_name: NameFactory, my_name: NameFactory
) -> None:
    pg_b, my_b = pg_base(pg_name, schema=PG_RICH[:6]), my_base(my_name)
    # Worker names of their base (`dagz db` ignores a stamped database named otherwise).
    pg_ws = [f"{pg_b}_jw0{i}" for i in range(2)]
    my_ws = [f"{my_b}_jw0{i}" for i in range(2)]
    try:
        _cli_lists_and_drops(pg_b, my_b, pg_ws, my_ws)
    finally:
        for w in pg_ws:
            _pg.drop(w, **PG)
        for w in my_ws:
            _mysql.drop(w, **MY)


def _cli_lists_and_drops(pg_b: str, my_b: str, pg_ws: list[str], my_ws: list[str]) -> None:
    for w in pg_ws:
        _pg.provision(pg_b, w, **PG)
    for w in my_ws:
        _mysql.provision(my_b, w, **MY)
    fp = _pg.fingerprint(pg_b, **PG)

    listing = _dagz("db", "list", "--engine", "pg")
    assert listing.returncode == 0, listing.stderr
    lines = [ln.split() for ln in listing.stdout.splitlines()]
    assert lines[0][:4] == ["ENGINE", "DATABASE", "BASE", "FINGERPRINT"]
    mine = [ln for ln in lines if ln[1] in pg_ws]
    assert [ln[:4] for ln in mine] == [["pg", w, pg_b, fp[:12]] for w in sorted(pg_ws)]
    assert not any(ln[1] == pg_b for ln in lines)  # the base is no worker database
    both = _dagz("db", "list")
    assert all(w in both.stdout for w in [*pg_ws, *my_ws]), both.stdout

    dry = _dagz("db", "drop", "--base", my_b, "--dry-run")
    assert dry.returncode == 0
    assert dry.stdout.count("would drop mysql") == 2
    assert all(my_comment(w) for w in my_ws)
    dropped = _dagz("db", "drop", "--base", my_b, "--engine", "mysql")
    assert dropped.returncode == 0, dropped.stderr
    assert sorted(dropped.stdout.splitlines()) == [
        f"dropped mysql {w} (base {my_b})" for w in sorted(my_ws)
    ]
    assert not my_query(None, f"SHOW DATABASES LIKE '{my_ws[0]}'")
    assert my_query(None, f"SHOW DATABASES LIKE '{my_b}'")  # the base stays
    dropped = _dagz("db", "drop", "--base", pg_b)
    assert dropped.returncode == 0, dropped.stderr
    assert not pg_query("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{pg_ws[0]}'")
    unreachable = _dagz("db", "list", "--engine", "mysql", "--port", "1")
    assert unreachable.returncode == 1
    assert "cannot connect" in unreachable.stderr
