"""dagz's database utilities (`dagz._pg`, `dagz._mysql`): truncate, clone, drop, connect.

They run in this test process, against the real servers, without the shim preloaded (`dagz._shim`
then loads libdagz.so RTLD_LOCAL for its functions only). Every test uses databases of its own
(``dagz_dbu_<uuid>_…``) and drops them at the end, so the module is xdist-safe; it does not use
the suite's shared databases (``myapp``…), and does not recreate them (see `pg_databases`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from support import REPO_ROOT

if importlib.util.find_spec("dagz") is None:  # source checkout without `pip install`
    sys.path.insert(0, str(REPO_ROOT / "shim"))

from dagz import _mysql, _pg

PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

NameFactory = Callable[[str], str]


@pytest.fixture(scope="session", autouse=True)
def pg_databases() -> tuple[str, ...]:
    """Overrides conftest's autouse fixture: these tests need none of the shared databases, and
    must not drop/recreate them under tests of other workers that use them."""
    return ()


def _unique(tag: str) -> str:
    return f"dagz_dbu_{uuid.uuid4().hex[:10]}_{tag}"


@pytest.fixture
def pg_name() -> Iterator[NameFactory]:
    """Hands out unique PostgreSQL database names; drops them all at the end."""
    names: list[str] = []

    def make(tag: str) -> str:
        names.append(_unique(tag))
        return names[-1]

    yield make
    for name in names:
        _pg.drop(name, **PG)


@pytest.fixture
def my_name() -> Iterator[NameFactory]:
    """Hands out unique MySQL database names; drops them all at the end."""
    names: list[str] = []

    def make(tag: str) -> str:
        names.append(_unique(tag))
        return names[-1]

    yield make
    for name in names:
        _mysql.drop(name, **MY)


@pytest.fixture(params=["psycopg", "psycopg2"])
def pg_driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once with each PostgreSQL driver `_pg` can use."""
    name = str(request.param)
    module = importlib.import_module(name)
    monkeypatch.setattr(_pg, "_driver", lambda: (name, module))
    return name


@pytest.fixture(params=["MySQLdb", "pymysql"])
def my_driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once with each MySQL driver `_mysql` can use."""
    name = str(request.param)
    module = importlib.import_module(name)
    monkeypatch.setattr(_mysql, "_driver", lambda: (name, module))
    return name


# --------------------------------------------------------------------------------------------
# helpers


def pg_exec(db: str, *statements: str) -> None:
    conn = _pg.connect(db, **PG)
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


def pg_create(name: str) -> None:
    pg_exec("postgres", f'CREATE DATABASE "{name}"')


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


def _pg_lit(text: str) -> str:
    """A string literal for the test's own queries (names here have no backslashes)."""
    return "'" + text.replace("'", "''") + "'"


def pg_counts(db: str) -> dict[str, int]:
    """Row count of every user table, keyed ``schema.table``."""
    tables = pg_query(
        db,
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_type = 'BASE TABLE'"
        "   AND table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    union = " UNION ALL ".join(
        f'SELECT \'{s}.{t}\', count(*)::int FROM "{s}"."{t}"' for s, t in tables
    )
    return {str(k): int(v) for k, v in pg_query(db, union)}


def my_counts(db: str) -> dict[str, int]:
    tables = my_query(
        db,
        "SELECT TABLE_NAME FROM information_schema.TABLES"
        f" WHERE TABLE_SCHEMA = '{db}' AND TABLE_TYPE = 'BASE TABLE'",
    )
    union = " UNION ALL ".join(
        f"SELECT {_pg_lit(t)}, COUNT(*) FROM {_mysql.quote_ident(t)}" for (t,) in tables
    )
    return {str(k): int(v) for k, v in my_query(db, union)}


def assert_dagz_error(exc: BaseException, db: str) -> None:
    text = str(exc)
    assert isinstance(exc, RuntimeError)
    assert text.startswith("dagz: "), text
    assert db in text, text
    assert "\n" not in text, text


# --------------------------------------------------------------------------------------------
# PostgreSQL truncate

# 50 tables: 10 parents (identity), 30 children (serial, FK to a parent; every third child also
# references the previous child), 8 misc (identity), other.items (identity, another schema) and
# alembic_version. A view, and a free-standing sequence.
PG_SCHEMA_50 = [
    *(
        f"CREATE TABLE parent_{i:02} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " name text NOT NULL)"
        for i in range(10)
    ),
    *(
        f"CREATE TABLE child_{i:02} (id serial PRIMARY KEY,"
        f" parent_id bigint REFERENCES parent_{i % 10:02}(id),"
        + (f" sibling_id int REFERENCES child_{i - 1:02}(id)," if i % 3 == 2 else "")
        + " note text)"
        for i in range(30)
    ),
    *(
        f"CREATE TABLE misc_{i:02} (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v int)"
        for i in range(8)
    ),
    "CREATE SCHEMA other",
    'CREATE TABLE other.items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "Label" text)',
    "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
    "INSERT INTO alembic_version VALUES ('abc123')",
    "CREATE VIEW parent_children AS SELECT p.name, c.note FROM parent_00 p"
    " JOIN child_00 c ON c.parent_id = p.id",
    "CREATE SEQUENCE free_counter START 100",
]


def test_pg_schema_has_50_tables(pg_name: NameFactory) -> None:
    db = pg_name("t50")
    pg_create(db)
    pg_exec(db, *PG_SCHEMA_50)
    assert len(pg_counts(db)) == 50


def test_pg_truncate_empties_exactly_the_tables_with_rows(
    pg_driver: str, pg_name: NameFactory
) -> None:
    db = pg_name("trunc")
    pg_create(db)
    pg_exec(db, *PG_SCHEMA_50)
    # Written from another connection and committed, as a test would.
    pg_exec(
        db,
        "INSERT INTO parent_00 (name) VALUES ('a'), ('b'), ('c')",
        "INSERT INTO child_00 (parent_id, note) VALUES (1, 'x'), (2, 'y')",
        # A referencing table with rows whose parent table is empty (NULL foreign key).
        "INSERT INTO child_05 (parent_id, note) VALUES (NULL, 'orphan')",
        "INSERT INTO other.items (\"Label\") VALUES ('one')",
        # Empty again, but its identity advanced: must restart too.
        "INSERT INTO misc_03 (v) VALUES (1), (2)",
        "DELETE FROM misc_03",
        "SELECT nextval('free_counter')",
    )
    emptied = _pg.truncate(db, **PG)
    assert sorted(emptied) == ["child_00", "child_05", "other.items", "parent_00"]

    counts = pg_counts(db)
    assert counts.pop("public.alembic_version") == 1
    assert set(counts.values()) == {0}, {k: v for k, v in counts.items() if v}
    assert pg_query(db, "SELECT version_num FROM alembic_version") == [("abc123",)]

    # Identities and the free-standing sequence restart.
    pg_exec(db, "INSERT INTO parent_00 (name) VALUES ('new')")
    assert pg_query(db, "SELECT id FROM parent_00") == [(1,)]
    assert pg_query(db, "INSERT INTO child_05 (note) VALUES ('n') RETURNING id") == [(1,)]
    assert pg_query(db, "INSERT INTO misc_03 (v) VALUES (9) RETURNING id") == [(1,)]
    assert pg_query(db, "INSERT INTO other.items (\"Label\") VALUES ('z') RETURNING id") == [(1,)]
    assert pg_query(db, "SELECT nextval('free_counter')") == [(100,)]
    # The view is untouched and works.
    pg_exec(db, "INSERT INTO child_00 (parent_id, note) VALUES (1, 'again')")
    assert pg_query(db, "SELECT name, note FROM parent_children") == [("new", "again")]

    # Only what the last step wrote is emptied next time.
    assert sorted(_pg.truncate(db, **PG)) == [
        "child_00",
        "child_05",
        "misc_03",
        "other.items",
        "parent_00",
    ]
    assert _pg.truncate(db, **PG) == []


def test_pg_truncate_fk_cycle_restrict_and_self_reference(pg_name: NameFactory) -> None:
    """DELETE needs no order: rows in a foreign-key cycle, RESTRICT and a self-reference."""
    db = pg_name("cycle")
    pg_create(db)
    pg_exec(
        db,
        "CREATE TABLE a (id int PRIMARY KEY, b_id int)",
        "CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a(id) ON DELETE RESTRICT)",
        "ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b(id)",
        "CREATE TABLE tree (id int PRIMARY KEY, parent int REFERENCES tree(id))",
        "CREATE TABLE casc (id int PRIMARY KEY, a_id int REFERENCES a(id) ON DELETE CASCADE)",
        "INSERT INTO a VALUES (1, NULL)",
        "INSERT INTO b VALUES (1, 1)",
        "UPDATE a SET b_id = 1",
        "INSERT INTO tree VALUES (1, NULL), (2, 1), (3, 2)",
        "INSERT INTO casc VALUES (1, 1)",
    )
    assert _pg.truncate(db, **PG) == ["a", "b", "casc", "tree"]
    assert set(pg_counts(db).values()) == {0}


def test_pg_truncate_does_not_fire_delete_triggers(pg_name: NameFactory) -> None:
    """A table with a user ON DELETE trigger is TRUNCATEd: the audit table stays empty."""
    db = pg_name("trig")
    pg_create(db)
    pg_exec(
        db,
        "CREATE TABLE audit (id serial PRIMARY KEY, msg text)",
        "CREATE TABLE item (id serial PRIMARY KEY, name text)",
        "CREATE TABLE other (id serial PRIMARY KEY)",
        "CREATE FUNCTION log_delete() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN INSERT INTO audit (msg) VALUES ('deleted ' || OLD.id); RETURN OLD; END $$",
        "CREATE TRIGGER item_deleted AFTER DELETE ON item FOR EACH ROW"
        " EXECUTE FUNCTION log_delete()",
        "INSERT INTO item (name) VALUES ('a'), ('b')",
        "INSERT INTO other DEFAULT VALUES",
        "DELETE FROM item WHERE id = 2",
    )
    assert pg_query(db, "SELECT count(*) FROM audit") == [(1,)]
    assert _pg.truncate(db, **PG) == ["audit", "item", "other"]
    assert set(pg_counts(db).values()) == {0}
    assert pg_query(db, "INSERT INTO item (name) VALUES ('c') RETURNING id") == [(1,)]
    assert pg_query(db, "INSERT INTO audit (msg) VALUES ('m') RETURNING id") == [(1,)]


def test_pg_truncate_partitioned_table(pg_name: NameFactory) -> None:
    """A partitioned table is listed (and emptied) once, as its root."""
    db = pg_name("part")
    pg_create(db)
    pg_exec(
        db,
        "CREATE TABLE measure (id int GENERATED ALWAYS AS IDENTITY, at date NOT NULL)"
        " PARTITION BY RANGE (at)",
        "CREATE TABLE measure_2023 PARTITION OF measure"
        " FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')",
        "CREATE TABLE measure_2024 PARTITION OF measure"
        " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
        "INSERT INTO measure (at) VALUES ('2023-05-01'), ('2024-05-01')",
    )
    assert _pg.truncate(db, **PG) == ["measure"]
    assert pg_query(db, "SELECT count(*) FROM measure") == [(0,)]
    assert pg_query(db, "INSERT INTO measure (at) VALUES ('2024-02-02') RETURNING id") == [(1,)]


def test_pg_truncate_keeps_bookkeeping_sequences(pg_name: NameFactory) -> None:
    db = pg_name("keep")
    pg_create(db)
    pg_exec(
        db,
        "CREATE TABLE django_migrations (id serial PRIMARY KEY, app text, name text)",
        "CREATE TABLE schema_migrations (version bigint PRIMARY KEY)",
        "CREATE TABLE t (id serial PRIMARY KEY)",
        "INSERT INTO django_migrations (app, name) VALUES ('a', '0001'), ('a', '0002')",
        "INSERT INTO schema_migrations VALUES (20240101)",
        "INSERT INTO t DEFAULT VALUES",
    )
    assert _pg.truncate(db, **PG) == ["t"]
    assert pg_query(db, "SELECT count(*) FROM django_migrations") == [(2,)]
    assert pg_query(db, "SELECT count(*) FROM schema_migrations") == [(1,)]
    # The bookkeeping table's own sequence was not restarted (would collide with id 1).
    assert pg_query(db, "INSERT INTO django_migrations (app) VALUES ('b') RETURNING id") == [(3,)]


def test_pg_truncate_quotes_identifiers(pg_name: NameFactory) -> None:
    db = pg_name("quote")
    pg_create(db)
    pg_exec(
        db,
        'CREATE SCHEMA "My Schema"',
        'CREATE TABLE "My Schema"."Odd ""Name""" (id serial PRIMARY KEY)',
        'INSERT INTO "My Schema"."Odd ""Name""" DEFAULT VALUES',
    )
    assert _pg.truncate(db, **PG) == ['My Schema.Odd "Name"']
    assert pg_query(db, 'SELECT count(*) FROM "My Schema"."Odd ""Name"""') == [(0,)]


def test_pg_truncate_empty_database(pg_name: NameFactory) -> None:
    db = pg_name("none")
    pg_create(db)
    assert _pg.truncate(db, **PG) == []


def test_pg_truncate_errors_name_the_database(pg_name: NameFactory) -> None:
    db = pg_name("missing")
    with pytest.raises(_pg.PgUtilError) as info:
        _pg.truncate(db, **PG, password="s3cret-pw")
    assert_dagz_error(info.value, db)
    assert "s3cret-pw" not in str(info.value)


def test_pg_truncate_lock_timeout_names_the_sessions(
    pg_name: NameFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = pg_name("locked")
    pg_create(db)
    pg_exec(db, "CREATE TABLE t (id int)", "INSERT INTO t VALUES (1)")
    monkeypatch.setattr(_pg, "LOCK_TIMEOUT", "300ms")
    holder = _pg.connect(db, **PG, application_name="dagz-lock-holder")
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT * FROM t FOR UPDATE")  # row locks until the transaction ends
        with pytest.raises(_pg.PgUtilError) as info:
            _pg.truncate(db, **PG)
    finally:
        holder.close()
    assert_dagz_error(info.value, db)
    assert "dagz-lock-holder" in str(info.value)
    assert _pg.truncate(db, **PG) == ["t"]


# --------------------------------------------------------------------------------------------
# PostgreSQL clone

PG_BASE = [
    "CREATE TABLE author (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text)",
    "CREATE TABLE book (id serial PRIMARY KEY, author_id int NOT NULL REFERENCES author(id),"
    " title text, title_upper text)",
    "CREATE VIEW book_titles AS SELECT a.name, b.title FROM book b JOIN author a"
    " ON a.id = b.author_id",
    "CREATE FUNCTION upper_title() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN NEW.title_upper := upper(NEW.title); RETURN NEW; END $$",
    "CREATE TRIGGER book_upper BEFORE INSERT OR UPDATE ON book"
    " FOR EACH ROW EXECUTE FUNCTION upper_title()",
    "INSERT INTO author (name) VALUES ('Ann'), ('Bob')",
    "INSERT INTO book (author_id, title) VALUES (1, 'first'), (2, 'second')",
]


def test_pg_clone_copies_schema_data_view_trigger(pg_driver: str, pg_name: NameFactory) -> None:
    base, target = pg_name("base"), pg_name("w1")
    pg_create(base)
    pg_exec(base, *PG_BASE)

    assert _pg.clone(base, target, **PG) == "cloned"
    assert pg_query(
        target,
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
        " WHERE contype = 'f'",
    ) == [("book", "author")]
    assert pg_query(target, "SELECT name, title FROM book_titles ORDER BY title") == [
        ("Ann", "first"),
        ("Bob", "second"),
    ]
    assert pg_query(target, "SELECT title_upper FROM book ORDER BY id") == [("FIRST",), ("SECOND",)]
    pg_exec(target, "INSERT INTO book (author_id, title) VALUES (2, 'third')")
    assert pg_query(target, "SELECT id, title_upper FROM book WHERE title = 'third'") == [
        (3, "THIRD")
    ]
    # The base is untouched.
    assert pg_query(base, "SELECT count(*) FROM book") == [(2,)]

    # A second clone replaces the target, junk and all.
    pg_exec(target, "CREATE TABLE junk (x int)")
    holder = _pg.connect(target, **PG)  # a leftover session in the target does not stop it
    try:
        assert _pg.clone(base, target, **PG) == "cloned"
    finally:
        holder.close()
    tables = pg_query(
        target,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        " ORDER BY table_name",
    )
    assert tables == [("author",), ("book",), ("book_titles",)]
    assert pg_query(target, "SELECT count(*) FROM book") == [(2,)]


def test_pg_clone_missing_base_gives_empty_target(pg_driver: str, pg_name: NameFactory) -> None:
    base, target = pg_name("nobase"), pg_name("w2")
    assert _pg.clone(base, target, **PG) == "empty"
    assert pg_query(
        target, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ) == [(0,)]
    pg_exec(target, "CREATE TABLE junk (x int)")
    assert _pg.clone(base, target, **PG) == "empty"
    assert pg_query(
        target, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
    ) == [(0,)]


def _clone_concurrently(base: str, targets: list[str]) -> tuple[dict[str, str], list[str]]:
    """Clones `base` into every target at once (one thread each, released together)."""
    results: dict[str, str] = {}
    errors: list[str] = []
    barrier = threading.Barrier(len(targets))

    def run(target: str) -> None:
        try:
            barrier.wait()
            results[target] = _pg.clone(base, target, **PG)
        except BaseException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    return results, errors


def test_pg_clone_concurrent_from_one_template(pg_name: NameFactory) -> None:
    base = pg_name("tpl")
    pg_create(base)
    pg_exec(base, *PG_BASE)
    for rnd in range(3):
        targets = [pg_name(f"c{rnd}{i}") for i in range(4)]
        results, errors = _clone_concurrently(base, targets)
        assert errors == []
        assert results == dict.fromkeys(targets, "cloned")
        for target in targets:
            assert pg_query(target, "SELECT count(*) FROM book") == [(2,)]


def test_pg_clone_template_in_use_names_the_sessions(
    pg_name: NameFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, target = pg_name("busy"), pg_name("w3")
    pg_create(base)
    monkeypatch.setattr(_pg, "CLONE_RETRY_SECONDS", 0.2)
    holder = _pg.connect(base, **PG, application_name="dagz-template-holder")
    try:
        with pytest.raises(_pg.PgUtilError) as info:
            _pg.clone(base, target, **PG, password="s3cret-pw")
    finally:
        holder.close()
    assert_dagz_error(info.value, base)
    text = str(info.value)
    assert target in text
    assert "dagz-template-holder" in text
    assert "being accessed by other users" in text
    assert "s3cret-pw" not in text
    # Once the session left, cloning works.
    assert _pg.clone(base, target, **PG) == "cloned"


def test_pg_drop(pg_name: NameFactory) -> None:
    db = pg_name("drop")
    pg_create(db)
    holder = _pg.connect(db, **PG)
    try:
        _pg.drop(db, **PG)  # WITH (FORCE): a session inside does not stop it
    finally:
        holder.close()
    assert pg_query("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{db}'") == [
        (0,)
    ]
    _pg.drop(db, **PG)  # IF EXISTS


@pytest.mark.parametrize(
    "extra",
    [
        {"dbname": "nope", "database": "nope2"},
        {"dsn": "host=127.0.0.1 dbname=nope"},
        {"conninfo": "postgresql://postgres@127.0.0.1:5432/nope"},
    ],
)
def test_pg_connect_dbname_wins(pg_driver: str, extra: dict[str, str]) -> None:
    conn = _pg.connect("postgres", **PG, **extra)
    try:
        cur = conn.cursor()
        cur.execute("SELECT current_database()")
        assert cur.fetchall()[0][0] == "postgres"
        assert conn.autocommit
    finally:
        conn.close()


def test_pg_maintenance_database_falls_back(
    pg_name: NameFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a ``postgres`` database, clone/drop use the next maintenance database."""
    monkeypatch.setattr(_pg, "_MAINTENANCE_DBS", ("dagz_dbu_no_such_db", "postgres"))
    target = pg_name("fallback")
    assert _pg.clone(pg_name("nobase"), target, **PG) == "empty"
    _pg.drop(target, **PG)
    assert pg_query("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{target}'") == []


# --------------------------------------------------------------------------------------------
# MySQL truncate

MY_SCHEMA_50 = [
    *(
        f"CREATE TABLE parent_{i:02} (id int AUTO_INCREMENT PRIMARY KEY, name varchar(20))"
        " ENGINE=InnoDB"
        for i in range(10)
    ),
    *(
        f"CREATE TABLE child_{i:02} (id int AUTO_INCREMENT PRIMARY KEY, parent_id int,"
        + (" sibling_id int," if i % 3 == 2 else "")
        + " note varchar(20),"
        f" FOREIGN KEY (parent_id) REFERENCES parent_{i % 10:02}(id)"
        + (f", FOREIGN KEY (sibling_id) REFERENCES child_{i - 1:02}(id)" if i % 3 == 2 else "")
        + ") ENGINE=InnoDB"
        for i in range(30)
    ),
    *(
        f"CREATE TABLE misc_{i:02} (id int AUTO_INCREMENT PRIMARY KEY, v int) ENGINE=InnoDB"
        for i in range(5)
    ),
    "CREATE TABLE plain (k varchar(10) PRIMARY KEY) ENGINE=InnoDB",
    "CREATE TABLE natural_key (k varchar(10) PRIMARY KEY, v int) ENGINE=InnoDB",
    "CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, msg varchar(40)) ENGINE=InnoDB",
    "CREATE TABLE `odd ``name``` (id int AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB",
    "CREATE TABLE django_migrations (id int AUTO_INCREMENT PRIMARY KEY, app varchar(20),"
    " name varchar(40)) ENGINE=InnoDB",
    "INSERT INTO django_migrations (app, name) VALUES ('a', '0001'), ('a', '0002')",
    "CREATE VIEW parent_children AS SELECT p.name, c.note FROM parent_00 p"
    " JOIN child_00 c ON c.parent_id = p.id",
    # Deleting from misc_04 writes to audit: truncate must not leave rows behind that way.
    "CREATE TRIGGER misc_04_audit AFTER DELETE ON misc_04 FOR EACH ROW"
    " INSERT INTO audit (msg) VALUES (CONCAT('deleted ', OLD.id))",
    "CREATE TRIGGER plain_audit AFTER DELETE ON plain FOR EACH ROW"
    " INSERT INTO audit (msg) VALUES (CONCAT('deleted ', OLD.k))",
]


def test_my_schema_has_50_tables(my_name: NameFactory) -> None:
    db = my_name("t50")
    my_exec(None, f"CREATE DATABASE `{db}`")
    my_exec(db, *MY_SCHEMA_50)
    assert len(my_counts(db)) == 50


def test_my_truncate_empties_exactly_the_tables_with_rows(
    my_driver: str, my_name: NameFactory
) -> None:
    db = my_name("trunc")
    my_exec(None, f"CREATE DATABASE `{db}`")
    my_exec(db, *MY_SCHEMA_50)
    my_exec(
        db,
        "INSERT INTO parent_00 (name) VALUES ('a'), ('b'), ('c')",
        "INSERT INTO child_00 (parent_id, note) VALUES (1, 'x'), (2, 'y')",
        "INSERT INTO child_05 (parent_id, note) VALUES (NULL, 'orphan')",
        "INSERT INTO misc_04 (v) VALUES (1), (2)",
        "INSERT INTO plain VALUES ('k1')",
        "INSERT INTO natural_key VALUES ('a', 1), ('b', 2)",
        "INSERT INTO `odd ``name``` VALUES (), ()",
        # Empty again, but its counter advanced: must be reset too.
        "INSERT INTO misc_03 (v) VALUES (1), (2)",
        "DELETE FROM misc_03",
    )
    emptied = _mysql.truncate(db, **MY)
    assert emptied == sorted(
        ["child_00", "child_05", "misc_04", "natural_key", "odd `name`", "parent_00", "plain"]
    )
    counts = my_counts(db)
    assert counts.pop("django_migrations") == 2
    assert set(counts.values()) == {0}, {k: v for k, v in counts.items() if v}

    for table in ("parent_00", "child_05", "misc_03", "misc_04", "`odd ``name```"):
        name = table if table.startswith("`") else f"`{table}`"
        my_exec(db, f"INSERT INTO {name} () VALUES ()")
        assert my_query(db, f"SELECT MAX(id) FROM {name}") == [(1,)], table
    # The bookkeeping table's counter was not reset.
    my_exec(db, "INSERT INTO django_migrations (app) VALUES ('b')")
    assert my_query(db, "SELECT MAX(id) FROM django_migrations") == [(3,)]
    # The view still works.
    my_exec(db, "INSERT INTO child_00 (parent_id, note) VALUES (1, 'again')")
    assert my_query(db, "SELECT name, note FROM parent_children") == [(None, "again")]

    assert _mysql.truncate(db, **MY) == [
        "child_00",
        "child_05",
        "misc_03",
        "misc_04",
        "odd `name`",
        "parent_00",
    ]
    assert _mysql.truncate(db, **MY) == []


def test_my_empty_statements_pick_per_table() -> None:
    """TRUNCATE where a counter must be reset or a DELETE trigger exists, DELETE otherwise."""
    assert _mysql.EMPTY_METHOD == "auto"
    statements = _mysql._empty_statements(
        "d", ["nat", "ai", "trig"], triggered={"trig"}, advanced=["ai", "empty_ai"]
    )
    assert statements == [
        "TRUNCATE TABLE `d`.`ai`",
        "TRUNCATE TABLE `d`.`empty_ai`",
        "TRUNCATE TABLE `d`.`trig`",
        "DELETE FROM `d`.`nat`",
    ]


def test_my_truncate_lock_timeout_names_the_sessions(
    my_driver: str, my_name: NameFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = my_name("locked")
    my_exec(None, f"CREATE DATABASE `{db}`")
    my_exec(db, "CREATE TABLE t (id int AUTO_INCREMENT PRIMARY KEY)", "INSERT INTO t VALUES ()")
    monkeypatch.setattr(_mysql, "LOCK_WAIT_SECONDS", 1)
    holder = _mysql.connect(db, **MY)
    try:
        cur = holder.cursor()
        cur.execute("BEGIN")
        cur.execute("SELECT * FROM t FOR UPDATE")  # metadata + row locks until the end
        with pytest.raises(_mysql.MySQLUtilError) as info:
            _mysql.truncate(db, **MY)
        holder_id = holder.thread_id()
    finally:
        holder.close()
    assert_dagz_error(info.value, db)
    assert "(1205)" in str(info.value)
    assert f"id {holder_id} " in str(info.value)
    assert _mysql.truncate(db, **MY) == ["t"]


def test_my_truncate_errors_name_the_database(my_name: NameFactory) -> None:
    db = my_name("missing")
    with pytest.raises(_mysql.MySQLUtilError) as info:
        _mysql.truncate(db, **MY)
    assert_dagz_error(info.value, db)


# --------------------------------------------------------------------------------------------
# MySQL clone

MY_BASE = [
    "CREATE TABLE author (id int AUTO_INCREMENT PRIMARY KEY, name varchar(20)) ENGINE=InnoDB",
    # `book` sorts before `author`'s dependents would: order must not matter (FK checks off).
    "CREATE TABLE book (id int AUTO_INCREMENT PRIMARY KEY, author_id int NOT NULL,"
    " title varchar(40), title_len int AS (CHAR_LENGTH(title)) VIRTUAL,"
    " CONSTRAINT book_author FOREIGN KEY (author_id) REFERENCES author(id)) ENGINE=InnoDB",
    "CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, msg varchar(60)) ENGINE=InnoDB",
    "CREATE TABLE zero_id (id int AUTO_INCREMENT PRIMARY KEY, v int) ENGINE=InnoDB",
    "CREATE TABLE empty_one (id int AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB",
    "CREATE VIEW z_titles AS SELECT a.name, b.title FROM book b JOIN author a"
    " ON a.id = b.author_id",
    # A view on a view whose name sorts first: creation order must follow dependencies.
    "CREATE VIEW a_title_count AS SELECT COUNT(*) AS n FROM z_titles",
    "CREATE TRIGGER book_audit AFTER INSERT ON book FOR EACH ROW"
    " INSERT INTO audit (msg) VALUES (CONCAT('book ', NEW.title))",
    "CREATE TRIGGER book_upper BEFORE INSERT ON book FOR EACH ROW"
    " BEGIN SET NEW.title = UPPER(NEW.title); END",
    "INSERT INTO author (name) VALUES ('Ann'), ('Bob')",
    "INSERT INTO book (author_id, title) VALUES (1, 'first'), (2, 'second')",
    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO')",
    "INSERT INTO zero_id VALUES (0, 10), (5, 50)",
]


def test_my_clone_copies_schema_data_views_triggers(my_driver: str, my_name: NameFactory) -> None:
    base, target = my_name("base"), my_name("w1")
    my_exec(None, f"CREATE DATABASE `{base}` CHARACTER SET latin1 COLLATE latin1_swedish_ci")
    conn = _mysql.connect(base, **MY)
    try:
        cur = conn.cursor()
        for statement in MY_BASE:
            cur.execute(statement)
    finally:
        conn.close()

    assert _mysql.clone(base, target, **MY) == "cloned"
    assert my_query(
        None,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA"
        f" WHERE SCHEMA_NAME = '{target}'",
    ) == [("latin1", "latin1_swedish_ci")]
    assert sorted(
        my_query(
            None,
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES"
            f" WHERE TABLE_SCHEMA = '{target}'",
        )
    ) == [
        ("a_title_count", "VIEW"),
        ("audit", "BASE TABLE"),
        ("author", "BASE TABLE"),
        ("book", "BASE TABLE"),
        ("empty_one", "BASE TABLE"),
        ("z_titles", "VIEW"),
        ("zero_id", "BASE TABLE"),
    ]
    assert my_query(
        None,
        "SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME"
        f" FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = '{target}'",
    ) == [("book_author", "book", "author")]
    # Seed rows, generated column, ids (including an explicit 0) are copied; copying fired no
    # trigger (audit holds the base's two rows, not four).
    assert my_query(target, "SELECT id, title, title_len FROM book ORDER BY id") == [
        (1, "FIRST", 5),
        (2, "SECOND", 6),
    ]
    assert my_query(target, "SELECT id, v FROM zero_id ORDER BY id") == [(0, 10), (5, 50)]
    assert my_query(target, "SELECT msg FROM audit ORDER BY id") == [
        ("book FIRST",),
        ("book SECOND",),
    ]
    # The views select from the target, not from the base.
    my_exec(base, "DELETE FROM book WHERE id = 2")
    assert my_query(target, "SELECT n FROM a_title_count") == [(2,)]
    assert my_query(target, "SELECT name, title FROM z_titles ORDER BY title") == [
        ("Ann", "FIRST"),
        ("Bob", "SECOND"),
    ]
    # Both triggers work in the target.
    my_exec(target, "INSERT INTO book (author_id, title) VALUES (2, 'third')")
    assert my_query(target, "SELECT id, title FROM book WHERE id = 3") == [(3, "THIRD")]
    assert my_query(target, "SELECT msg FROM audit ORDER BY id DESC LIMIT 1") == [("book THIRD",)]
    # The foreign key is enforced.
    with pytest.raises(Exception, match="foreign key constraint fails"):
        my_exec(target, "INSERT INTO book (author_id, title) VALUES (99, 'nope')")

    # A second clone replaces the target, junk and all.
    my_exec(target, "CREATE TABLE junk (x int)")
    assert _mysql.clone(base, target, **MY) == "cloned"
    tables = my_query(
        None,
        f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{target}'",
    )
    assert ("junk",) not in tables
    assert len(tables) == 7
    assert my_query(target, "SELECT COUNT(*) FROM book") == [(1,)]


def test_my_clone_views_retry_when_order_is_wrong(
    my_driver: str, my_name: NameFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the text-based view order misses a dependency, the views are created by retrying."""
    base, target = my_name("vbase"), my_name("vt")
    my_exec(None, f"CREATE DATABASE `{base}`")
    my_exec(
        base,
        "CREATE TABLE t (id int PRIMARY KEY)",
        "INSERT INTO t VALUES (1), (2)",
        "CREATE VIEW v3 AS SELECT id FROM t",
        "CREATE VIEW v2 AS SELECT id FROM v3",
        "CREATE VIEW v1 AS SELECT COUNT(*) AS n FROM v2",
        "CREATE TRIGGER t_ins BEFORE INSERT ON t FOR EACH ROW SET NEW.id = NEW.id * 10",
    )
    monkeypatch.setattr(_mysql, "_view_order", sorted)
    assert _mysql.clone(base, target, **MY) == "cloned"
    assert my_query(target, "SELECT n FROM v1") == [(2,)]
    my_exec(target, "INSERT INTO t VALUES (3)")
    assert my_query(target, "SELECT MAX(id) FROM v2") == [(30,)]


def test_my_clone_missing_base_gives_empty_target(my_driver: str, my_name: NameFactory) -> None:
    base, target = my_name("nobase"), my_name("w2")
    assert _mysql.clone(base, target, **MY) == "empty"
    my_exec(target, "CREATE TABLE junk (x int)")
    assert _mysql.clone(base, target, **MY) == "empty"
    assert my_query(
        None, f"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{target}'"
    ) == [(0,)]


def test_my_clone_of_empty_schema(my_name: NameFactory) -> None:
    base, target = my_name("bare"), my_name("w3")
    my_exec(None, f"CREATE DATABASE `{base}`")
    assert _mysql.clone(base, target, **MY) == "cloned"
    assert my_query(None, f"SHOW DATABASES LIKE '{target}'") == [(target,)]


def test_my_drop(my_name: NameFactory) -> None:
    db = my_name("drop")
    my_exec(None, f"CREATE DATABASE `{db}`")
    _mysql.drop(db, **MY)
    assert my_query(None, f"SHOW DATABASES LIKE '{db}'") == []
    _mysql.drop(db, **MY)  # IF EXISTS


@pytest.mark.parametrize(
    "spelling",
    [
        {"db": "nope", "passwd": ""},
        {"database": "nope", "password": ""},
        {"db": "nope", "database": "nope2", "password": "", "passwd": ""},
    ],
)
def test_my_connect_spellings(my_driver: str, spelling: dict[str, str]) -> None:
    kwargs = {k: v for k, v in MY.items() if k != "password"}
    conn = _mysql.connect("mysql", **kwargs, **spelling)
    try:
        cur = conn.cursor()
        cur.execute("SELECT DATABASE(), @@autocommit")
        assert tuple(cur.fetchall()[0]) == ("mysql", 1)
    finally:
        conn.close()


def test_pymysql_connect_disables_ssl_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymysql  # noqa: PLC0415

    seen: list[dict[str, object]] = []
    real = pymysql.connect

    def spy(**kwargs: object) -> object:
        seen.append(kwargs)
        return real(**kwargs)

    fake = ModuleType("pymysql")
    fake.connect = spy  # type: ignore[attr-defined]
    monkeypatch.setattr(_mysql, "_driver", lambda: ("pymysql", fake))
    _mysql.connect(None, **MY).close()
    assert seen[-1]["ssl_disabled"] is True
    # Any SSL setting of the caller's is left alone.
    _mysql.connect(None, **MY, ssl_disabled=False).close()
    assert seen[-1]["ssl_disabled"] is False
