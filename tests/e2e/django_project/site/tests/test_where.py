"""Where each alias's connection landed, seen by the server (``current_database()`` /
``DATABASE()``) and by Django's settings, recorded for the e2e test; a child process connecting
to the same name lands there too."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.db import connections
from djsite.recorder import record, record_landing

_CHILD = {
    "postgresql": (
        "import sys, psycopg2; c = psycopg2.connect(host='127.0.0.1', user='postgres',"
        " dbname=sys.argv[1]); cur = c.cursor(); cur.execute('SELECT current_database()');"
        " print(cur.fetchone()[0])"
    ),
    "mysql": (
        "import sys, MySQLdb; c = MySQLdb.connect(host='127.0.0.1', user='root', passwd='',"
        " db=sys.argv[1]); cur = c.cursor(); cur.execute('SELECT DATABASE()');"
        " print(cur.fetchone()[0])"
    ),
}


@pytest.mark.django_db(databases=["default", "other", "replica"])
@pytest.mark.parametrize("n", range(12))
def test_landed(n: int) -> None:
    for alias in ("default", "other", "replica"):
        name, server = record_landing(alias)
        assert server == name
    assert (
        connections["replica"].settings_dict["NAME"] == connections["default"].settings_dict["NAME"]
    )


@pytest.mark.django_db
def test_child_lands_in_the_same_database() -> None:
    conn = connections["default"]
    name = conn.settings_dict["NAME"]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD[conn.vendor], name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    record("child", settings=name, stdout=out.stdout.strip(), stderr=out.stderr.strip()[-400:])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == name
