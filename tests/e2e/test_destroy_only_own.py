"""Issue 12, "dagz only destroys what it made": `truncate` empties only a worker database that
dagz made (its name is this worker's copy of the base its stamp names, and the stamp is
there), `dagz db drop` drops only databases with both the worker-name shape of their base and a
stamp (half-built copies only when asked) — or, for the Django test databases dagz makes (issue
14), the template's ``…_dzt`` shape or a ``…_gwN`` copy of the template its stamp names — and a
``dsn``/``conninfo`` that does not parse never shows its password.

Like test_dbutil.py these run in this process against the real servers (the config objects and
engines without the shim preloaded); every database is named ``<run prefix>_<tag>_<8 hex>…``
and dropped at the end. Every check is made from the server side (row counts, pg_database,
information_schema.SCHEMATA).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dagz import _shim
from dagz.config import MYSQL_CONFIG, PG_CONFIG, DbConfig
from dagz.engines import mysql as _mysql
from dagz.engines import postgres as _pg
from dagz.engines import warm as _warm
from dagz.engines.postgres import connection as _pg_connection
from dagz.errors import DagzError
from db_fixtures import MY, PG, pg_databases, run_sql  # noqa: F401 - fixture used by name

from support import unique_name

SECRET = "Sekr3tPW"


class Server:
    """One family's server: statements, row counts and database comments, server side."""

    def __init__(self, family: str) -> None:
        self.family = family
        self.engine: Any = _pg if family == "pg" else _mysql
        self.kw = PG if family == "pg" else MY
        self.config: DbConfig = PG_CONFIG if family == "pg" else MYSQL_CONFIG
        self.made: list[str] = []

    def q(self, name: str) -> str:
        return f'"{name}"' if self.family == "pg" else f"`{name}`"

    def run(self, db: str | None, *statements: str) -> list[tuple[Any, ...]]:
        where = db if db is not None or self.family == "mysql" else "postgres"
        return run_sql(self.engine, where, self.kw, *statements)

    def create(self, name: str, comment: str | None = None, rows: int = 3) -> str:
        self.made.append(name)
        self.run(None, f"CREATE DATABASE {self.q(name)}")
        if comment is not None:
            self.comment(name, comment)
        values = ", ".join(f"({i}, 'row {i}')" for i in range(1, rows + 1))
        self.run(
            name,
            "CREATE TABLE items (id int PRIMARY KEY, label text)",
            f"INSERT INTO items VALUES {values}",
        )
        return name

    def comment(self, name: str, text: str) -> None:
        if self.family == "pg":
            self.run(None, f"COMMENT ON DATABASE {self.q(name)} IS '{text}'")
        else:
            self.run(None, f"ALTER DATABASE {self.q(name)} COMMENT = '{text}'")

    def exists(self, name: str) -> bool:
        if self.family == "pg":
            return bool(self.run(None, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"))
        return bool(
            self.run(
                None, f"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"
            )
        )

    def count(self, name: str) -> int:
        return int(self.run(name, "SELECT count(*) FROM items")[0][0])

    def drop_all(self) -> None:
        for name in self.made:
            self.engine.drop(name, **self.kw)


@pytest.fixture(params=["pg", "mysql"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    srv = Server(str(request.param))
    try:
        yield srv
    finally:
        srv.drop_all()


# --------------------------------------------------------------------------------------------
# truncate


def test_truncate_refuses_a_user_database_that_merely_has_the_worker_suffix(
    server: Server,
) -> None:
    """`truncate('legacy_jw01', …)` on worker 1 emptied a user database that merely has the
    suffix; now it is refused (one `dagz:` line) and its rows stay."""
    suffix = server.config.session().suffix
    legacy = server.create(unique_name("legacy") + suffix)
    with pytest.raises(DagzError) as info:
        server.config.truncate(legacy, **server.kw)
    message = str(info.value)
    assert message.startswith("dagz:"), message
    assert "\n" not in message, message
    assert legacy in message, message
    assert "stamp" in message, message
    assert server.count(legacy) == 3  # server side: untouched


def test_truncate_refuses_a_stamp_of_another_base(server: Server) -> None:
    """A stamp alone is not enough either: the name must be this worker's copy of the base the
    stamp names (here a stamp copied onto a user database)."""
    suffix = server.config.session().suffix
    legacy = server.create(unique_name("legacy") + suffix)
    server.comment(legacy, _warm.stamp_text(unique_name("other"), "0" * 32))
    with pytest.raises(DagzError, match="refused"):
        server.config.truncate(legacy, **server.kw)
    assert server.count(legacy) == 3


def test_truncate_empties_a_worker_database_dagz_made(server: Server) -> None:
    """The copy `create_worker_init` made (stamped) is emptied, also when this process did not
    make it (a later run keeps it: the stamp decides)."""
    base = server.create(unique_name("base"))
    target = server.config.reroute_db(base)
    server.made.append(target)
    server.config.create_worker_init([base], **server.kw)(server.config.session().worker_num)
    assert server.count(target) == 3
    assert server.config.truncate(target, **server.kw) == ["items"]
    assert (server.count(target), server.count(base)) == (0, 3)
    # the same check a later process makes: no memory of having made it, only the stamp
    server.config._made.discard(target)
    server.run(target, "INSERT INTO items VALUES (7, 'again')")
    assert server.config.truncate(target, **server.kw) == ["items"]
    assert server.count(target) == 0


# --------------------------------------------------------------------------------------------
# passwords in a dsn that does not parse


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.parametrize(
    "dsn",
    [
        f"host=127.0.0.1 user=postgres {SECRET}",
        f"host=127.0.0.1 user=postgres password={SECRET} x",
        f"host=127.0.0.1 password = {SECRET} port",
    ],
    ids=["stray-word", "after-password", "spaced"],
)
def test_unparsable_dsn_never_shows_its_password(
    driver: str, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``dsn=`` that the driver cannot parse showed its password in the error
    (``missing "=" after "Sekr3tPW"``); truncate and create_worker_init now redact it."""
    module = importlib.import_module(driver)
    monkeypatch.setattr(_pg_connection, "_driver", lambda: (driver, module))
    suffix = PG_CONFIG.session().suffix
    base = unique_name("nobase")
    calls: list[Callable[[], object]] = [
        lambda: PG_CONFIG.truncate(base + suffix, dsn=dsn),
        lambda: PG_CONFIG.create_worker_init([base], dsn=dsn)(PG_CONFIG.session().worker_num),
        lambda: _pg.drop(base + suffix, dsn=dsn),
    ]
    for call in calls:
        with pytest.raises(DagzError, match="dagz:") as info:
            call()
        text = str(info.value)
        assert "dagz:" in text, text
        assert SECRET not in text, text
    # nothing was created under either name
    srv = Server("pg")
    assert not srv.exists(base)
    assert not srv.exists(base + suffix)


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


def _engine(server: Server) -> str:
    return "pg" if server.family == "pg" else "mysql"


def test_db_drop_ignores_a_stamp_like_comment_on_a_database_not_named_like_a_worker(
    server: Server,
) -> None:
    """`dagz db drop` trusted a comment alone: `important` with a comment that looks like a
    stamp was listed and dropped. Now only a database named like a worker copy of the base its
    stamp names (``<base>_jwNN``) and stamped is dagz's."""
    base = server.create(unique_name("base"))
    important = server.create(unique_name("important"))
    server.comment(important, _warm.stamp_text(base, "0" * 32))
    worker = server.config.reroute_db(base)
    server.made.append(worker)
    server.config.create_worker_init([base], **server.kw)(server.config.session().worker_num)

    listing = _dagz("db", "list", "--engine", _engine(server))
    assert listing.returncode == 0, listing.stderr
    assert worker in listing.stdout, listing.stdout
    assert important not in listing.stdout, listing.stdout
    dropped = _dagz("db", "drop", "--base", base, "--engine", _engine(server))
    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stdout.splitlines() == [f"dropped {_engine(server)} {worker} (base {base})"]
    assert server.exists(important)
    assert server.count(important) == 3
    assert not server.exists(worker)
    assert server.exists(base)


def test_db_drop_lists_half_built_copies_and_drops_them_only_when_asked(
    server: Server,
) -> None:
    """A worker-shaped copy with the building stamp (a killed run's, or one being built by a
    run going on now) is listed as incomplete and dropped only with --incomplete (or --all)."""
    base = server.create(unique_name("base"))
    done = server.config.reroute_db(base)
    server.made.append(done)
    server.config.create_worker_init([base], **server.kw)(server.config.session().worker_num)
    other = 90 if server.config.session().worker_num != 90 else 91
    half = _warm_name(server, base, other)
    server.create(half, comment=_warm.building_text(base))

    listing = _dagz("db", "list", "--engine", _engine(server))
    assert listing.returncode == 0, listing.stderr
    line = next(ln for ln in listing.stdout.splitlines() if half in ln)
    assert "(incomplete)" in line, listing.stdout
    dropped = _dagz("db", "drop", "--base", base, "--engine", _engine(server))
    assert dropped.returncode == 0, dropped.stderr
    assert server.exists(half)
    assert not server.exists(done)
    assert "--incomplete drops it" in dropped.stdout, dropped.stdout
    dropped = _dagz("db", "drop", "--base", base, "--incomplete", "--engine", _engine(server))
    assert dropped.returncode == 0, dropped.stderr
    assert f"dropped {_engine(server)} {half} (base {base}, incomplete)" in dropped.stdout
    assert not server.exists(half)
    assert server.exists(base)


def _warm_name(server: Server, base: str, worker: int) -> str:
    engine = _shim.ENGINE_POSTGRES if server.family == "pg" else _shim.ENGINE_MYSQL
    return _shim.policy_render(engine, base, worker)


def test_db_list_and_drop_cover_djangos_template_and_copies(server: Server) -> None:
    """Issue 14: `dagz db list/drop` cover the Django test databases dagz makes (the template
    ``<TEST NAME>_dzt`` and the worker copies ``<TEST NAME>_gwN``) and still drop only what
    carries dagz's stamp: Django's own ``…_gwN`` (no stamp), a copy whose stamp names another
    template and a ``…_dzt`` with a plain (non-Django) stamp stay."""
    name = unique_name("dj")  # Django's TEST["NAME"] (NAME: `base`)
    base, template = f"{name}_b", f"{name}_dzt"
    done, half = f"{name}_gw0", f"{name}_gw1"
    stamp = _warm.stamp_text(base, "a" * 32, django="b" * 32, migrations="7")
    server.create(template, comment=stamp)
    server.create(done, comment=_warm.stamp_text(template, "c" * 32))
    server.create(half, comment=_warm.building_text(template))
    djangos = server.create(f"{name}_gw2")  # pytest-django's own, without dagz
    other = server.create(f"{name}_gw3", comment=_warm.stamp_text(f"{name}_o_dzt", "d" * 32))
    plain = server.create(f"{name}_p_dzt", comment=_warm.stamp_text(base, "e" * 32))
    engine = _engine(server)

    listing = _dagz("db", "list", "--engine", engine)
    assert listing.returncode == 0, listing.stderr
    lines = {ln.split()[1]: ln for ln in listing.stdout.splitlines()[1:] if name in ln}
    assert set(lines) == {template, done, half}, listing.stdout
    assert lines[template].split()[2] == base
    assert lines[done].split()[2] == template
    assert "(incomplete)" in lines[half]

    dropped = _dagz("db", "drop", "--base", template, "--engine", engine)
    assert dropped.returncode == 0, dropped.stderr
    assert f"dropped {engine} {done} (base {template})" in dropped.stdout
    assert not server.exists(done)
    assert server.exists(half)
    assert server.exists(template)
    dropped = _dagz("db", "drop", "--base", template, "--incomplete", "--engine", engine)
    assert f"dropped {engine} {half} (base {template}, incomplete)" in dropped.stdout
    dropped = _dagz("db", "drop", "--base", base, "--engine", engine)
    assert dropped.stdout.splitlines() == [f"dropped {engine} {template} (base {base})"]
    assert not server.exists(half)
    assert not server.exists(template)
    for kept in (djangos, other, plain):
        assert server.exists(kept), kept
        assert server.count(kept) == 3, kept
