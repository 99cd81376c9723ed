"""Issue 13: ``--dagz-reset=rows`` resets, before each test, the rows of every table the previous
test changed back to the base's (seed rows kept, sequences and auto-increment counters restored);
a reset that would wait on a lock an earlier test's connection still holds fails that test with a
clear error instead of hanging. Without the option a worker's database evolves as in a serial run.

A project written into a temporary directory, with no conftest, runs on one dagz worker (tests in
file order): the first test leaves rows behind, the next checks the state it starts from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from plugin_support import KEEP_ROWS, SampleDatabases, child_env, new_base_name, run_process

from support import VENV_PYTHON

TESTS = """
import psycopg2, pymysql

DB = "{db}"
KEEP = {keep}
HELD = []


def pg():
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=DB)
    conn.autocommit = True
    return conn, conn.cursor()


def my():
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database=DB,
                           autocommit=True)
    return conn, conn.cursor()


def test_1_leaves_rows_behind():
    for conn, cur in (pg(), my()):
        cur.execute("INSERT INTO items VALUES (1, 'left')")
        cur.execute("INSERT INTO notes (body) VALUES ('n1')")
        cur.execute("DELETE FROM keep_me WHERE id = 1")
        cur.execute("UPDATE keep_me SET note = 'changed' WHERE id = 2")
        conn.close()


def test_2_starts_from_the_base():
    for conn, cur in (pg(), my()):
        cur.execute("SELECT count(*) FROM items")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT id, note FROM keep_me ORDER BY id")
        seed = [(i, f"seed {{i}}") for i in range(1, KEEP + 1)]
        assert [tuple(r) for r in cur.fetchall()] == seed
        cur.execute("INSERT INTO notes (body) VALUES ('n2')")
        cur.execute("SELECT max(id) FROM notes")
        assert cur.fetchone()[0] == 1  # the counter restored too
        conn.close()


def test_3_holds_a_lock_in_a_kept_connection():
    conn, cur = pg()
    cur.execute("INSERT INTO items VALUES (3, 'committed')")
    conn.autocommit = False
    cur.execute("SELECT * FROM items FOR UPDATE")
    HELD.append(conn)  # a pool would keep it: the transaction stays open


def test_4_reset_cannot_get_the_lock():
    pass
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, SampleDatabases]]:
    dbs = SampleDatabases(new_base_name())
    try:
        dbs.create()
        path = tmp_path / "project"
        path.mkdir()
        (path / "pytest.ini").write_text("[pytest]\n")
        (path / "test_reset.py").write_text(
            TESTS.replace("{db}", dbs.base)
            .replace("{keep}", str(KEEP_ROWS))
            .replace("{{i}}", "{i}")
        )
        yield path, dbs
    finally:
        dbs.drop_all()


def _run(path: Path, *args: str) -> tuple[int, str]:
    argv = [str(VENV_PYTHON), "-m", "pytest", "-p", "no:cacheprovider", "-v", *args]
    rc, out, err, _ = run_process(argv, child_env(), path, timeout=180)
    return rc, out + err


def _line(output: str, test: str) -> str:
    return next((x for x in output.splitlines() if f"::{test} " in x and "%]" in x), "")


def test_reset_rows_before_each_test(project: tuple[Path, SampleDatabases]) -> None:
    path, _ = project
    rc, output = _run(path, "--dagz-workers", "1", "--dagz-reset=rows")
    assert "PASSED" in _line(output, "test_1_leaves_rows_behind"), output[-5000:]
    assert "PASSED" in _line(output, "test_2_starts_from_the_base"), output[-5000:]
    assert "PASSED" in _line(output, "test_3_holds_a_lock_in_a_kept_connection"), output[-5000:]
    assert "ERROR" in _line(output, "test_4_reset_cannot_get_the_lock"), output[-5000:]
    errors = [x for x in output.splitlines() if "dagz: --dagz-reset=rows" in x]
    assert errors, output[-5000:]
    assert "waited more than 2s for a lock" in errors[0], errors[0]
    assert rc == 1, output[-5000:]


def test_without_reset_the_database_evolves_as_in_a_serial_run(
    project: tuple[Path, SampleDatabases],
) -> None:
    path, _ = project
    rc, output = _run(path, "--dagz-workers", "1", "-k", "test_1 or test_2")
    assert "PASSED" in _line(output, "test_1_leaves_rows_behind"), output[-5000:]
    assert "FAILED" in _line(output, "test_2_starts_from_the_base"), output[-5000:]
    assert rc == 1, output[-5000:]
