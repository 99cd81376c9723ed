"""Issue 14: while dagz migrates a Django template on MariaDB, ``ALTER TABLE … ADD CONSTRAINT …
FOREIGN KEY`` runs in place (``foreign_key_checks = 0`` for that statement alone, after dagz
checked the rows) — and nothing else changes: a key over rows without a parent still fails with
the server's own error, data statements are still checked, the session's setting is restored.

A child process (Django configured there only) runs the statements on a ``dz_…`` database and
reports; the proof is server side: InnoDB's table id (a table the server copied gets a new one),
``REFERENTIAL_CONSTRAINTS`` and the server's error numbers. The database is dropped at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from dagz.engines import mysql as _mysql
from db_fixtures import MY, pg_databases, run_sql  # noqa: F401 - fixture used by name

from support import unique_name

CHILD = """
import json, sys
import django
from django.conf import settings

settings.configure(DATABASES={"default": {"ENGINE": "django.db.backends.mysql",
    "HOST": "127.0.0.1", "PORT": "3306", "USER": "root", "NAME": sys.argv[1]}})
django.setup()
from django.db import connection
from dagz._django_build import foreign_keys_in_place

ADD = ("ALTER TABLE `{t}` ADD CONSTRAINT `{t}_fk` FOREIGN KEY (`pid`)"
       " REFERENCES `parent` (`id`)")
cur = connection.cursor()
cur.execute("CREATE TABLE parent (id int PRIMARY KEY)")
cur.execute("INSERT INTO parent VALUES (1), (2)")
for t, pids in (("clean", "1, 2, NULL"), ("orphan", "1, 99")):
    cur.execute(f"CREATE TABLE {t} (id int AUTO_INCREMENT PRIMARY KEY, pid int, KEY (pid))")
    cur.execute(f"INSERT INTO {t} (pid) VALUES " + ", ".join(f"({p})" for p in pids.split(", ")))

def table_id(t):
    cur.execute("SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = %s",
                (f"{sys.argv[1]}/{t}",))
    return cur.fetchone()[0]

def error(sql):
    try:
        cur.execute(sql)
    except Exception as exc:
        return exc.args[0]
    return None

out = {}
before = table_id("clean")
with foreign_keys_in_place(connection):
    out["clean_error"] = error(ADD.format(t="clean"))
    out["orphan_error"] = error(ADD.format(t="orphan"))
    out["insert_error"] = error("INSERT INTO clean (pid) VALUES (42)")
    cur.execute("SELECT @@SESSION.foreign_key_checks")
    out["checks_inside"] = cur.fetchone()[0]
out["rebuilt"] = table_id("clean") != before
cur.execute("SELECT TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS"
            " WHERE CONSTRAINT_SCHEMA = %s ORDER BY 1", (sys.argv[1],))
out["keys"] = [r[0] for r in cur.fetchall()]
print(json.dumps(out))
"""


@pytest.fixture
def database() -> Iterator[str]:
    name = unique_name("djfk")
    run_sql(_mysql, None, MY, f"CREATE DATABASE `{name}`")
    try:
        yield name
    finally:
        _mysql.drop(name, **MY)


def test_foreign_keys_added_in_place_and_nothing_else_changes(database: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, database],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["clean_error"] is None, out
    assert out["rebuilt"] is False, out  # added in place: the server did not copy the table
    assert out["orphan_error"] == 1452, out  # the server's own "Cannot add … a child row"
    assert out["insert_error"] == 1452, out  # data statements still checked
    assert out["checks_inside"] == 1, out
    assert out["keys"] == ["clean"], out
