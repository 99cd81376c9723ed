"""Issue 10, "a base database that does not exist": `create_worker_init` created empty worker
databases, stamped them, and the tests then failed with ``relation … does not exist``. Now the
default is an error naming the missing base (nothing is created); ``empty_if_missing=True``
creates the empty copy on purpose (suites that migrate in a session fixture), and the log line
says so in words.

In this process against the real servers (the config objects without the shim preloaded);
names ``<run prefix>_<tag>_<8 hex>…``, dropped at the end; checked from the server side.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dagz._state import STATE
from dagz.config import MYSQL_CONFIG, PG_CONFIG, DbConfig
from dagz.engines import mysql as _mysql
from dagz.engines import postgres as _pg
from dagz.engines import warm as _warm
from dagz.errors import DagzError
from db_fixtures import MY, PG, pg_databases  # noqa: F401 - fixture used by name

from support import unique_name


class Family:
    def __init__(self, name: str) -> None:
        self.name = name
        self.engine: Any = _pg if name == "pg" else _mysql
        self.kw = PG if name == "pg" else MY
        self.config: DbConfig = PG_CONFIG if name == "pg" else MYSQL_CONFIG
        self.port = 5432 if name == "pg" else 3306
        self.made: list[str] = []

    def state(self, db: str) -> tuple[bool, str | None, int]:
        """(exists, comment, number of user tables), server side."""
        exists, comment = self.engine.comment_of(db, **self.kw)
        if not exists:
            return False, None, 0
        conn = self.engine.connect(db, **self.kw)
        try:
            cur = conn.cursor()
            schema = "current_schema()" if self.name == "pg" else "DATABASE()"
            cur.execute(
                f"SELECT count(*) FROM information_schema.tables WHERE table_schema = {schema}"
            )
            return True, comment, int(cur.fetchall()[0][0])
        finally:
            conn.close()


@pytest.fixture(params=["pg", "mysql"])
def family(request: pytest.FixtureRequest) -> Iterator[Family]:
    fam = Family(str(request.param))
    try:
        yield fam
    finally:
        for db in fam.made:
            fam.engine.drop(db, **fam.kw)


def test_missing_base_is_an_error_naming_it(family: Family) -> None:
    """Default: an error naming the base and the server, saying what to do; nothing made."""
    base = unique_name("nobase")
    target = family.config.reroute_db(base)
    family.made.append(target)
    init = family.config.create_worker_init([base], **family.kw)
    with pytest.raises(DagzError) as info:
        init(family.config.session().worker_num)
    message = str(info.value)
    assert message == (
        f'dagz: {family.config.family} worker_init: base database "{base}" does not exist on'
        f" 127.0.0.1:{family.port} — create and migrate it first, or pass"
        " empty_if_missing=True to create_worker_init for suites that migrate in a session"
        " fixture"
    ), message
    assert family.state(target) == (False, None, 0)  # server side: nothing created


def test_missing_base_with_empty_if_missing_creates_an_empty_copy_and_says_so(
    family: Family,
) -> None:
    """``empty_if_missing=True``: the empty copy, stamped, and a log line that says it."""
    base = unique_name("nobase")
    target = family.config.reroute_db(base)
    family.made.append(target)
    init = family.config.create_worker_init([base], empty_if_missing=True, **family.kw)
    before = len(STATE.summary)
    init(family.config.session().worker_num)
    exists, comment, tables = family.state(target)
    assert (exists, tables) == (True, 0)
    stamp = _warm.parse_stamp(comment)
    assert stamp is not None
    assert (stamp.base, stamp.fingerprint) == (base, _warm.NO_BASE)
    lines = [ln for ln in STATE.summary[before:] if target in ln]
    assert len(lines) == 1, STATE.summary[before:]
    assert f'{target} created empty: base "{base}" does not exist' in lines[0], lines[0]
