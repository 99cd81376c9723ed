"""Issue 13: `dagz_set_decision_callback2` gives the decision callback the settings of the very
connect it decides (host, port, user, password, TLS settings…) so that auto mode can build a
worker database on the same server with the same credentials.

A child with the shim preloaded registers a callback that records what it got (and keeps every
name), then connects through each entry point; the child prints the records as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from support import APP, MY_HOST, MY_PORT, MY_USER, PG_HOST, PG_PORT, PG_USER, Launcher

CHILD = """
import json
from dagz import _shim

seen = []

def cb(engine, name, settings):
    seen.append({"engine": engine, "name": name, "settings": settings})
    return _shim.CB_KEEP, ""

_shim.set_decision_callback2(cb)
import psycopg, psycopg2, MySQLdb

def step(tag, fn):
    before = len(seen)
    try:
        fn()
    except Exception as exc:
        seen.append({"tag": tag, "error": str(exc)})
    for rec in seen[before:]:
        rec["tag"] = tag

step("psycopg2.kwargs", lambda: psycopg2.connect(
    host="@pg_host@", port=@pg_port@, user="@pg_user@", password="pw1", dbname="@app@",
    sslmode="disable", application_name="dzset").close())
step("psycopg.conninfo", lambda: psycopg.connect(
    "host=@pg_host@ port=@pg_port@ user=@pg_user@ password='p w2' dbname=@app@ "
    "sslmode=prefer").close())
step("psycopg2.uri", lambda: psycopg2.connect(
    "postgresql://@pg_user@:s%40cret@@pg_host@:@pg_port@/@app@?sslmode=disable").close())
def mysql():
    conn = MySQLdb.connect(host="@my_host@", port=@my_port@, user="@my_user@", passwd="",
                           db="mysql")
    conn.select_db("information_schema")
    conn.cursor().execute("USE mysql")
    conn.close()
step("mysqlclient", mysql)
print("RECORDS=" + json.dumps(seen))
"""


def _records(launcher: Launcher, python: Path) -> list[dict[str, object]]:
    values = {
        "pg_host": PG_HOST,
        "pg_port": PG_PORT,
        "pg_user": PG_USER,
        "app": APP,
        "my_host": MY_HOST,
        "my_port": MY_PORT,
        "my_user": MY_USER,
    }
    code = CHILD
    for key, value in values.items():
        code = code.replace(f"@{key}@", str(value))
    result = launcher.python(python, code)
    assert result.rc == 0, result.describe()
    line = next(x for x in result.stdout.splitlines() if x.startswith("RECORDS="))
    return list(json.loads(line[len("RECORDS=") :]))


def _by_tag(records: list[dict[str, object]], tag: str) -> list[dict[str, object]]:
    return [r for r in records if r.get("tag") == tag]


def test_libpq_connects_give_the_callback_their_settings(
    launcher: Launcher, venv_python: Path, pg_databases: tuple[str, ...]
) -> None:
    records = _records(launcher, venv_python)
    pg = str(PG_PORT)
    expected = {
        "psycopg2.kwargs": {
            "host": PG_HOST,
            "port": pg,
            "user": PG_USER,
            "password": "pw1",
            "sslmode": "disable",
            "application_name": "dzset",
        },
        "psycopg.conninfo": {
            "host": PG_HOST,
            "port": pg,
            "user": PG_USER,
            "password": "p w2",
            "sslmode": "prefer",
        },
        "psycopg2.uri": {
            "host": PG_HOST,
            "port": pg,
            "user": PG_USER,
            "password": "s@cret",
            "sslmode": "disable",
        },
    }
    for tag, want in expected.items():
        got = _by_tag(records, tag)
        assert [r["name"] for r in got] == [APP], (tag, records)
        settings = got[0]["settings"]
        assert isinstance(settings, dict)
        assert "dbname" not in settings, (tag, settings)
        # the drivers add settings of their own (client_encoding, …): ours must all be there
        assert {k: settings.get(k) for k in want} == want, (tag, settings)


def test_mysql_handle_settings_follow_select_db_and_use(
    launcher: Launcher, venv_python: Path
) -> None:
    records = _by_tag(_records(launcher, venv_python), "mysqlclient")
    assert [r.get("name") for r in records] == ["mysql", "information_schema", "mysql"], records
    want = {"host": MY_HOST, "user": MY_USER, "passwd": "", "port": str(MY_PORT)}
    for rec in records:
        settings = rec["settings"]
        assert isinstance(settings, dict)
        assert {k: settings.get(k) for k in want} == want, rec
