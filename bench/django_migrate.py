"""pytest-django under dagz (issue 14): time until the first test runs on every one of N workers.

Generates a Django project (``--apps`` apps x ``--per-app`` migrations, default 10 x 16 = 160,
plus contrib auth/contenttypes: CreateModel with foreign keys across apps, AddField, AddIndex,
AlterField and RunPython seeding) in a temporary directory and runs pytest on it in a subprocess,
side by side, repetitions interleaved (the order rotates):

* ``cold django``: pytest-django ``-n 4``: every worker migrates its own ``test_<NAME>_gwN``;
* ``cold dagz``: ``--dagz-workers 4`` with the DAGZ-style conftest (PG_CONFIG / MYSQL_CONFIG with
  the defaults), nothing left from before (template and copies dropped, not timed): one worker
  migrates the template, every worker clones it;
* ``warm django``: pytest-django ``--reuse-db -n 4`` on the databases its previous run left;
* ``warm dagz``: ``--dagz-workers 4`` on the template and copies its previous run left;
* ``floor``: ``-n N`` running a test that touches no database: what pytest, xdist, Django and
  the project cost before any test database exists (the same for every method).

Each method has its own database name, so no method finds another's databases. The figure is
the wall time from starting pytest until the first test has started on all N workers (each test
appends ``<worker> <time>``); the ratios are also given above the floor (each median minus the
floor's: the database setup alone). Targets: cold dagz >= 1.8x faster than cold django (>= 3.5x
with ``--workers 8``), warm dagz >= 3x faster than warm django. Then the edited-migration case:
a migration already applied gets one more AddField and a test checks for that column:
``--reuse-db`` keeps the stale database (the test fails), dagz rebuilds (it passes).
Everything the benchmark made is dropped at the end. ``--breakdown N`` only times N pairs of
serial migrations by statement kind (Django alone, and inside dagz's in-place foreign keys as
dagz builds a MariaDB template): how much of a migration is the server's.

    .venv/bin/python bench/django_migrate.py [--reps 3] [--engines pg,mysql] [--apps 10]
        [--workers 4] [--kinds cold,warm] [--breakdown N]
"""
# bench-run-args: --reps 2

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import MySQLdb
import psycopg

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
#: The number of workers (``--workers``; 4 by default).
SETUP = {"workers": 4}
TARGET_COLD, TARGET_COLD_8, TARGET_WARM = 1.8, 3.5, 3.0
METHODS = ("cold django", "cold dagz", "warm django", "warm dagz", "floor")

SETTINGS = """
import os

ENGINE = os.environ["DZ_BENCH_ENGINE"]
SERVER = (
    {"ENGINE": "django.db.backends.postgresql", "HOST": "127.0.0.1", "PORT": "5432",
     "USER": "postgres"}
    if ENGINE == "pg"
    else {"ENGINE": "django.db.backends.mysql", "HOST": "127.0.0.1", "PORT": "3306",
          "USER": "root", "OPTIONS": {"charset": "utf8mb4"}, "TEST": {"CHARSET": "utf8mb4"}}
)
DATABASES = {"default": {**SERVER, "NAME": os.environ["DZ_BENCH_NAME"]}}
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", *APPS]
SECRET_KEY = "bench"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""

CONFTEST = """
import os

if os.environ.get("DZ_BENCH_DAGZ") == "1":
    from dagz.integ.psycopg import PG_CONFIG
    from dagz.integ.pymysql import MYSQL_CONFIG
    import dagz.integ.mysqlclient

    for cfg in (PG_CONFIG, MYSQL_CONFIG):
        cfg.configure(rewrite_db_name=cfg.default_rewrite_db_name,
                      should_reroute=cfg.default_should_reroute, prepare=None)
"""

TESTS = """
import os
import time

import pytest
from django.db import connection


@pytest.mark.django_db
@pytest.mark.parametrize("n", range(16))
def test_ready(n):
    with open(os.environ["DZ_BENCH_EVENTS"], "a") as f:
        f.write(f"{os.environ.get('PYTEST_XDIST_WORKER', '-')} {time.time()}\\n")
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM app00_thing0")
        assert cur.fetchone()[0] > 0


@pytest.mark.django_db
def test_schema():
    column = os.environ.get("DZ_BENCH_EXPECT_COLUMN", "name")
    with connection.cursor() as cur:
        table = connection.introspection.get_table_description(cur, "app00_thing0")
    assert column in [c.name for c in table]
"""

FLOOR_TEST = """
import os
import time

import pytest


@pytest.mark.parametrize("n", range(16))
def test_floor(n):
    with open(os.environ["DZ_BENCH_EVENTS"], "a") as f:
        f.write(f"{os.environ.get('PYTEST_XDIST_WORKER', '-')} {time.time()}\\n")
"""

#: `--breakdown`: one serial migration of a test database by Django's own ``create_test_db``,
#: every statement timed by kind: what the template build costs on the server (SQL) and in
#: Django's migration executor (the rest: model states rendered in Python). ``sys.argv[1]``:
#: "django" (Django alone) or "dagz" (inside dagz's `foreign_keys_in_place`, as dagz builds a
#: MariaDB template).
BREAKDOWN = """
import collections, contextlib, os, sys, time
sys.path.insert(0, os.getcwd())
os.environ["DJANGO_SETTINGS_MODULE"] = "benchsite.settings"
import django
django.setup()
from django.db import connection

spent = collections.defaultdict(lambda: [0, 0.0])
KINDS = ("FOREIGN KEY", "CREATE TABLE", "CREATE INDEX", "INSERT", "MODIFY", "ADD COLUMN")

def timed(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        kind = next((k for k in KINDS if k in sql), "other")
        spent[kind][0] += 1
        spent[kind][1] += time.perf_counter() - started

from dagz._django_build import foreign_keys_in_place

dagz = sys.argv[1] == "dagz"
started = time.perf_counter()
with connection.execute_wrapper(timed), (
    foreign_keys_in_place(connection) if dagz else contextlib.nullcontext()
):
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
total = time.perf_counter() - started
sql = sum(t for _, t in spent.values())
connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
print(f"{sys.argv[1]:6} migrate {total:.2f} s: SQL {sql:.2f} s ({100 * sql / total:.0f} %), "
      f"the rest (Django's executor, Python) {total - sql:.2f} s")
for kind, (n, t) in sorted(spent.items(), key=lambda kv: -kv[1][1]):
    print(f"    {kind:12} {n:5d} statements {t:6.2f} s ({1000 * t / n:.1f} ms each)")
"""

ID = '("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False))'


def _operations(app: str, k: int, cross: str | None) -> list[str]:
    if k == 1:
        return [
            f'migrations.CreateModel("Thing0", [{ID}, ("name", models.CharField(max_length=100)),'
            ' ("created", models.DateTimeField(auto_now_add=True))])'
        ]
    if k % 5 == 1:
        return [_create_model(app, f"Thing{k}{c}", cross) for c in "abc"]
    if k % 5 == 2:
        return [f'migrations.AddField("thing0", "f{k}", models.IntegerField(default=0))']
    if k % 5 == 3:
        index = f'models.Index(fields=["f{k - 1}"], name="{app}_i{k}")'
        return [f'migrations.AddIndex("thing0", {index})']
    if k % 5 == 4:
        return [f'migrations.AlterField("thing0", "f{k - 2}", models.BigIntegerField(default=0))']
    return ["migrations.RunPython(seed, migrations.RunPython.noop)"]


def _create_model(app: str, model: str, cross: str | None) -> str:
    """A model of 11 columns: text, numbers, a date, a flag, JSON, two foreign keys."""
    fields = [ID, '("label", models.CharField(max_length=50))']
    fields += ['("code", models.CharField(max_length=20, unique=True))']
    fields += ['("amount", models.DecimalField(max_digits=10, decimal_places=2, default=0))']
    fields += [
        '("count", models.IntegerField(default=0))',
        '("note", models.TextField(blank=True))',
    ]
    fields += [
        '("day", models.DateField(null=True))',
        '("flag", models.BooleanField(default=False))',
    ]
    fields += ['("data", models.JSONField(default=dict))']
    fields.append(
        f'("parent", models.ForeignKey("{app}.thing0", models.CASCADE, related_name="+"))'
    )
    if cross:
        fields.append(
            f'("other", models.ForeignKey("{cross}.thing0", models.CASCADE, related_name="+"))'
        )
    return f'migrations.CreateModel("{model}", [{", ".join(fields)}])'


def _migration_name(k: int) -> str:
    return "0001_initial" if k == 1 else f"{k:04d}_m{k}"


def _migration(app: str, k: int, cross: str | None) -> str:
    deps = [f'("{app}", "{_migration_name(k - 1)}")'] if k > 1 else []
    if cross and k % 5 == 1 and k > 1:
        deps.append(f'("{cross}", "0001_initial")')
    seed = (
        "def seed(apps, schema_editor):\n"
        f'    thing = apps.get_model("{app}", "Thing0")\n'
        f'    thing.objects.bulk_create(thing(name=f"s{k}_{{i}}") for i in range(20))\n\n\n'
    )
    return (
        "from django.db import migrations, models\n\n\n"
        + seed
        + "class Migration(migrations.Migration):\n"
        + f"    dependencies = [{', '.join(deps)}]\n"
        + f"    operations = [{', '.join(_operations(app, k, cross))}]\n"
    )


def generate(root: Path, apps: int, per_app: int) -> int:
    """Writes the project under `root`; returns the number of its own migrations."""
    names = [f"app{i:02d}" for i in range(apps)]
    (root / "benchsite").mkdir(parents=True)
    (root / "benchsite" / "__init__.py").write_text("")
    (root / "benchsite" / "settings.py").write_text(f"APPS = {names!r}\n{SETTINGS}")
    (root / "manage.py").write_text("")
    (root / "pytest.ini").write_text(
        "[pytest]\nDJANGO_SETTINGS_MODULE = benchsite.settings\ntestpaths = tests\n"
    )
    (root / "conftest.py").write_text(CONFTEST)
    (root / "tests").mkdir()
    (root / "tests" / "test_ready.py").write_text(TESTS)
    (root / "floor").mkdir()
    (root / "floor" / "test_floor.py").write_text(FLOOR_TEST)
    for i, app in enumerate(names):
        migrations = root / app / "migrations"
        migrations.mkdir(parents=True)
        (root / app / "__init__.py").write_text("")
        (migrations / "__init__.py").write_text("")
        cross = names[i - 1] if i > 0 else None
        for k in range(1, per_app + 1):
            (migrations / f"{_migration_name(k)}.py").write_text(_migration(app, k, cross))
    return apps * per_app


def edit_applied_migration(root: Path) -> None:
    """One more AddField in app00's second migration (already applied in a kept database)."""
    path = root / "app00" / "migrations" / f"{_migration_name(2)}.py"
    extra = 'migrations.AddField("thing0", "edited", models.IntegerField(null=True)), '
    path.write_text(path.read_text().replace("operations = [", "operations = [" + extra))


# --------------------------------------------------------------------------------------------
# runs


def run(root: Path, engine: str, name: str, method: str, *extra: str) -> tuple[float, float, str]:
    """(seconds until every worker ran its first test, total seconds, output); raises when the
    run failed, unless `extra` asks for a check (then the output says)."""
    events = root / f"events-{secrets.token_hex(4)}.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGZ_", "PYTEST_", "DZ_"))}
    env.update(DZ_BENCH_ENGINE=engine, DZ_BENCH_NAME=name, DZ_BENCH_EVENTS=str(events))
    cmd = [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if method.endswith("dagz"):
        env["DZ_BENCH_DAGZ"] = "1"
        cmd += ["--dagz-workers", str(SETUP["workers"])]
    else:
        cmd += ["-n", str(SETUP["workers"])]
        if method.startswith("warm"):
            cmd.append("--reuse-db")
    if method == "floor":
        cmd.append("floor")
    for item in extra:
        if item.startswith("EXPECT="):
            env["DZ_BENCH_EXPECT_COLUMN"] = item[len("EXPECT=") :]
        else:
            cmd.append(item)
    started = time.time()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    total = time.time() - started
    output = proc.stdout + proc.stderr
    if any(e.startswith("EXPECT=") for e in extra):
        events.unlink(missing_ok=True)
        return 0.0, total, output
    if proc.returncode != 0:
        raise SystemExit(f"{method} run failed (exit {proc.returncode}):\n{output[-4000:]}")
    first: dict[str, float] = {}
    for line in events.read_text().splitlines():
        worker, when = line.split()
        first[worker] = min(first.get(worker, float("inf")), float(when))
    events.unlink()
    if len(first) != SETUP["workers"]:
        raise SystemExit(f"{method}: only workers {sorted(first)} ran a test:\n{output[-3000:]}")
    return max(first.values()) - started, total, output


def drop_all(engine: str, prefix: str) -> None:
    """Drops every database named ``<prefix>…`` or ``test_<prefix>…`` (this benchmark's)."""
    likes = [p.replace("_", "\\_") + "%" for p in (prefix, f"test_{prefix}")]
    if engine == "pg":
        with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s OR datname LIKE %s", likes
            ).fetchall()
            for (db,) in rows:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        return
    conn = MySQLdb.connect(host="127.0.0.1", user="root", passwd="")
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
            " WHERE SCHEMA_NAME LIKE %s OR SCHEMA_NAME LIKE %s",
            likes,
        )
        for (db,) in cur.fetchall():
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    finally:
        conn.close()


def bench_engine(engine: str, args: argparse.Namespace, tmp: Path) -> None:
    root = tmp / engine
    count = generate(root, args.apps, args.per_app)
    prefix = f"dz_bench_{secrets.token_hex(3)}"
    names = {m: f"{prefix}_{m.replace(' ', '_')}" for m in METHODS}
    workers = SETUP["workers"]
    print(f"\n== {engine}: {count} migrations in {args.apps} apps (+ contrib), {workers} workers")
    try:
        if args.breakdown:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGZ_", "DZ_"))}
            env.update(DZ_BENCH_ENGINE=engine, DZ_BENCH_NAME=f"{prefix}_breakdown")
            for rep in range(args.breakdown):
                for how in ("django", "dagz") if rep % 2 == 0 else ("dagz", "django"):
                    cmd = [str(PYTHON), "-c", BREAKDOWN, how]
                    subprocess.run(cmd, cwd=root, env=env, check=True)
            return
        methods = [m for m in METHODS if m == "floor" or m.split()[0] in args.kinds]
        for method in methods:  # the runs that warm runs find (not timed)
            if method.startswith("warm"):
                run(root, engine, names[method], method)
        samples: dict[str, list[float]] = {m: [] for m in methods}
        for rep in range(args.reps):
            order = methods[rep % len(methods) :] + methods[: rep % len(methods)]
            for method in order:
                if method == "cold dagz":
                    drop_all(engine, names[method])
                ready, total, output = run(root, engine, names[method], method)
                samples[method].append(ready)
                print(f"rep {rep + 1} {method:12} first test on all workers {ready:6.2f} s"
                      f"  (run {total:6.2f} s)")  # fmt: skip
                if method.endswith("dagz"):
                    print("    " + "\n    ".join(_dagz_lines(output)))
        _report(samples)
        if "warm" in args.kinds:
            _edited_case(root, engine, names)
    finally:
        drop_all(engine, prefix)


def _dagz_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("dagz django: ")] or ["(none)"]


def _report(samples: dict[str, list[float]]) -> None:
    med = {m: statistics.median(v) for m, v in samples.items()}
    for m, values in samples.items():
        print(f"median {m:12} {med[m]:6.2f} s  (min {min(values):.2f}, max {max(values):.2f})")
    cold_target = TARGET_COLD_8 if SETUP["workers"] >= 8 else TARGET_COLD
    for kind, target in (("cold", cold_target), ("warm", TARGET_WARM)):
        if f"{kind} dagz" not in med:
            continue
        ratio = med[f"{kind} django"] / med[f"{kind} dagz"]
        verdict = "met" if ratio >= target else "MISSED"
        setup = med[f"{kind} django"] - med["floor"], med[f"{kind} dagz"] - med["floor"]
        above = f"{setup[0] / setup[1]:.2f}x" if min(setup) > 0 else "n/a (a median <= the floor)"
        print(
            f"{kind}: dagz {ratio:.2f}x faster than pytest-django (target {target}x: {verdict});"
            f" above the floor {above}"
        )


def _edited_case(root: Path, engine: str, names: dict[str, str]) -> None:
    edit_applied_migration(root)
    for method in ("warm django", "warm dagz"):
        _, total, output = run(root, engine, names[method], method, "EXPECT=edited", "-k", "schema")
        passed = re.search(r"\b1 passed\b", output) is not None and "failed" not in output
        print(
            f"edited migration, {method:12}: test of the new column "
            f"{'PASSED' if passed else 'FAILED'} ({total:.2f} s)"
        )
        if method.endswith("dagz"):
            print("    " + "\n    ".join(_dagz_lines(output)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--engines", default="pg,mysql")
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--per-app", type=int, default=16)
    parser.add_argument("--workers", type=int, default=SETUP["workers"])
    parser.add_argument("--kinds", default="cold,warm", help="cold, warm or both")
    parser.add_argument(
        "--breakdown", type=int, default=0, help="only time N serial migrations by statement kind"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="1 repetition of 2 apps x 5 migrations (proves it runs)",
    )
    args = parser.parse_args()
    if args.quick:
        args.reps, args.apps, args.per_app = 1, 2, 5
    SETUP["workers"] = args.workers
    args.kinds = [k.strip() for k in args.kinds.split(",")]
    if args.apps * args.per_app < 100:
        print("note: fewer than 100 migrations (the issue's benchmark asks for >= 100)")
    print(
        f"bench/django_migrate.py: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, "
        f"Python {sys.version.split()[0]}, {SETUP['workers']} workers"
    )
    tmp = Path(tempfile.mkdtemp(prefix="dz-bench-django-"))
    try:
        for engine in args.engines.split(","):
            bench_engine(engine.strip(), args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
