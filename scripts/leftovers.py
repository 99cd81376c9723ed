"""Acceptance check of `make e2e`: the e2e suite leaves the servers and /tmp as it found them.

    leftovers.py snapshot FILE      before the suite: makes the run prefix (dz_ + 6 random hex),
                                    records every database and role/user on both servers, every
                                    RabbitMQ vhost and every /tmp/dagz-run-* folder in FILE,
                                    prints the prefix (the Makefile hands it to pytest as
                                    DAGZ_E2E_RUN)
    leftovers.py compare FILE [--tmp DIR]
                                    after the suite: the same listing again; exit 1 when the run
                                    added or removed something (listed), else 0; DIR is the
                                    suite's TMPDIR (searched for dagz-run-* folders)

What counts, and why (strict, yet not flaky on a machine shared with other sessions):

* Every name the suite creates starts with the run prefix, and the prefix is new for each run. So
  anything that exists after the run and starts with the prefix is certainly this run's leak, and
  nothing another session does can produce it: **an added name with the run prefix always fails**.
  The check then drops it (only names with this run's prefix), so a failed check does not leave it
  behind either.
* A name that **disappeared** fails too, unless it is another test run's (``dz_`` + another
  prefix, or a per-test name of an older checkout of this suite, see OTHER_RUN_RE): the suite must
  never drop what it did not make (``myapp``, ``shop``, a user's database). Another session
  dropping its own database during the run would make this fail; the message says so. Test-run
  names are left out because those runs create and drop them all the time, on their own.
* An added name **without** the run prefix cannot be told apart from another session's work (the
  demo's ``shop``, a helper's run of older code), so by default it is listed as a note and does
  not fail. With ``--strict`` (also when ``$CI`` or ``$LEFTOVERS_STRICT`` is set: a CI machine
  runs nothing else) every added or removed name fails, other runs' ``dz_`` names included.
* ``dagz-run-*`` folders have no run prefix, so `make e2e` gives the suite a TMPDIR of its own
  (``/tmp/<run prefix>.XXXXXX``, passed to ``compare --tmp``; pytest's basetemp and every inner
  run's TMPDIR lie below it unless a test sets its own in there): **any dagz-run-* folder anywhere
  under it fails** (a dagz run of this suite did not remove its folder), before the Makefile
  removes the directory. In ``/tmp`` itself the suite has nothing to put, so a change there is
  someone else's unless code ignores TMPDIR: new or vanished ``/tmp/dagz-run-*`` folders (and
  ``/tmp/dagz-leases``, the default lease folder: the suite's go to its TMPDIR through
  ``DAGZ_LEASE_DIR``) are noted with whether a live process uses them (``DAGZ_RUN_DIR`` in
  ``/proc/*/environ``), and fail only with ``--strict``. (Other sessions' runs of older
  checkouts do leave such folders behind in /tmp while this suite runs.)
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import re
import secrets
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
PREFIX_RE = re.compile(r"dz_[0-9a-f]{6}")
#: Names of other test runs: ``dz_…`` (reserved for test runs by the project's rule), and the
#: per-test names older checkouts of this suite make (``dzw_``, ``dzctl_``, ``dzrefuse_``,
#: ``dagz_wdb_``/``dagz_dbu_``/``dagz_otel_``), which other worktrees on the machine may still run.
OTHER_RUN_RE = re.compile(r"dz|dagz_(wdb|dbu|otel)_")
#: kind -> what it is called in messages
KINDS = {
    "pg": "PostgreSQL database",
    "pg-role": "PostgreSQL role",
    "mysql": "MariaDB database",
    "mysql-user": "MariaDB user",
    "vhost": "RabbitMQ vhost",
    "run-dir": "dagz-run folder",
}
#: RabbitMQ's management API (`make servers` turns it on) and the machine's guest login.
RABBITMQ_API = "http://127.0.0.1:15672/api"
RABBITMQ_AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


def _rabbitmq(method: str, path: str) -> list[dict[str, object]] | None:
    request = urllib.request.Request(
        RABBITMQ_API + path, method=method, headers={"Authorization": RABBITMQ_AUTH}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def _fail(message: str) -> None:
    print(f"leftovers: {message}", file=sys.stderr)
    sys.exit(2)


def _server_names() -> dict[str, list[str]]:
    try:
        import psycopg  # noqa: PLC0415 - from .venv; a clear message when it is not there
        import pymysql  # noqa: PLC0415
    except ImportError as exc:
        _fail(f"{exc.name} is missing: run it with .venv/bin/python (`make venv`)")
    try:
        with psycopg.connect(**PG, autocommit=True, connect_timeout=10) as conn:
            pg = [str(r[0]) for r in conn.execute("SELECT datname FROM pg_database").fetchall()]
            roles = [str(r[0]) for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()]
    except psycopg.Error as exc:
        _fail(f"cannot list PostgreSQL at {PG['host']}:{PG['port']}: {' '.join(str(exc).split())}")
    try:
        my = pymysql.connect(**MY, connect_timeout=10)
    except pymysql.Error as exc:
        _fail(f"cannot list MariaDB at {MY['host']}:{MY['port']}: {exc}")
    try:
        with my.cursor() as cur:
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
            mysql = [str(r[0]) for r in cur.fetchall()]
            cur.execute("SELECT User, Host FROM mysql.user")
            users = [f"{u}@{h}" for u, h in cur.fetchall()]
    finally:
        my.close()
    try:
        vhosts = [str(v["name"]) for v in _rabbitmq("GET", "/vhosts") or []]
    except OSError as exc:
        _fail(f"cannot list RabbitMQ's vhosts at {RABBITMQ_API} (`make servers`): {exc}")
    return {"pg": pg, "pg-role": roles, "mysql": mysql, "mysql-user": users, "vhost": vhosts}


def _tmp_dirs() -> list[str]:
    return sorted({"/tmp", tempfile.gettempdir()})


def _run_dirs() -> list[str]:
    """The dagz-run-* folders, and the default lease folder (`/tmp/dagz-leases`: the suite's
    lease files belong in its own TMPDIR, `DAGZ_LEASE_DIR`)."""
    found: set[str] = set()
    for tmp in _tmp_dirs():
        for pattern in ("dagz-run-*", "dagz-leases"):
            found.update(p for p in glob.glob(os.path.join(tmp, pattern)) if os.path.isdir(p))
    return sorted(found)


def _live_run_dirs() -> dict[str, int]:
    """dagz-run folder -> pid of a live process whose environment names it (DAGZ_RUN_DIR)."""
    live: dict[str, int] = {}
    for environ in glob.glob("/proc/[0-9]*/environ"):
        try:
            data = Path(environ).read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        for item in data.split(b"\0"):
            if item.startswith(b"DAGZ_RUN_DIR="):
                path = item[len(b"DAGZ_RUN_DIR=") :].decode(errors="replace")
                live.setdefault(os.path.normpath(path), int(environ.split("/")[2]))
    return live


def _state() -> dict[str, Any]:
    names = _server_names()
    names["run-dir"] = _run_dirs()
    return {"names": {k: sorted(v) for k, v in names.items()}, "live": _live_run_dirs()}


def snapshot(path: Path, prefix: str | None) -> int:
    prefix = prefix or os.environ.get("DAGZ_E2E_RUN") or f"dz_{secrets.token_hex(3)}"
    if not PREFIX_RE.fullmatch(prefix):
        _fail(f"run prefix {prefix!r}: use dz_ plus 6 hex digits (e.g. dz_3f9a1c)")
    state = _state()
    ours = [
        f"{kind}:{name}"
        for kind, names in state["names"].items()
        for name in names
        if name.startswith(prefix)
    ]
    if ours:
        _fail(f"names with the new run prefix {prefix} exist already: {', '.join(ours)}")
    state["prefix"] = prefix
    state["time"] = time.time()
    path.write_text(json.dumps(state, indent=1, sort_keys=True))
    print(prefix)
    return 0


def _drop(kind: str, name: str, prefix: str) -> str:
    """Drops a leaked name of this run (never anything else); returns what happened."""
    if not name.startswith(prefix + "_") and name != prefix:
        return "kept"
    try:
        if kind in ("pg", "pg-role"):
            import psycopg  # noqa: PLC0415
            from psycopg import sql  # noqa: PLC0415

            statement = (
                "DROP DATABASE IF EXISTS {} WITH (FORCE)"
                if kind == "pg"
                else "DROP ROLE IF EXISTS {}"
            )
            with psycopg.connect(**PG, autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql.SQL(statement).format(sql.Identifier(name)))
        elif kind in ("mysql", "mysql-user"):
            import pymysql  # noqa: PLC0415

            conn = pymysql.connect(**MY, autocommit=True, connect_timeout=10)
            try:
                with conn.cursor() as cur:
                    if kind == "mysql":
                        cur.execute("DROP DATABASE IF EXISTS `{}`".format(name.replace("`", "``")))
                    else:
                        user, _, host = name.rpartition("@")
                        cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
            finally:
                conn.close()
        elif kind == "vhost":
            _rabbitmq("DELETE", "/vhosts/" + urllib.parse.quote(name, safe=""))
        else:
            return "kept"
    except Exception as exc:  # reported; the check fails anyway
        return f"could not drop it: {' '.join(str(exc).split())}"
    return "dropped it now"


def _judge_added(
    kind: str, name: str, prefix: str, strict: bool, live: dict[str, int]
) -> tuple[bool, str]:
    """(fails, why) for a name that exists now and did not before."""
    label = KINDS[kind]
    if kind != "run-dir" and (name.startswith(prefix + "_") or name == prefix):
        return True, f"added   {label} {name} ({_drop(kind, name, prefix)})"
    if strict:
        return True, f"added   {label} {name}"
    if kind == "run-dir":
        if name in live:
            return False, f"added   {label} {name}: in use by live pid {live[name]}"
        return False, f"added   {label} {name}: no live run uses it (another session's leak?)"
    if OTHER_RUN_RE.match(name):
        return False, f"added   {label} {name}: another test run's name"
    return False, f"added   {label} {name}: not a name of this run (another session?)"


def _judge_removed(kind: str, name: str, strict: bool, live: dict[str, int]) -> tuple[bool, str]:
    """(fails, why) for a name that existed before and is gone now."""
    label = KINDS[kind]
    if strict:
        return True, f"removed {label} {name}"
    if kind == "run-dir":
        if name in live:
            return False, f"removed {label} {name}: its run (pid {live[name]}) ended"
        return False, f"removed {label} {name}: a stale folder (another session cleaned up?)"
    if OTHER_RUN_RE.match(name):
        return False, f"removed {label} {name}: another test run's name"
    return True, (
        f"removed {label} {name}: the suite must not drop it"
        " (if another session dropped it during the run, run again)"
    )


def _suite_run_dirs(tmp: Path | None) -> list[str]:
    """Every dagz-run-* folder anywhere under the suite's own TMPDIR."""
    if tmp is None:
        return []
    return sorted(str(p) for p in tmp.rglob("dagz-run-*") if p.is_dir() and not p.is_symlink())


def compare(path: Path, strict: bool, tmp: Path | None = None) -> int:
    before = json.loads(path.read_text())
    prefix = str(before["prefix"])
    if tmp is not None and not tmp.is_dir():
        _fail(f"--tmp {tmp}: no such directory (the suite's TMPDIR)")
    after = _state()
    live_before: dict[str, int] = before.get("live", {})
    failures: list[str] = []
    notes: list[str] = []
    for kind in KINDS:
        old, new = set(before["names"].get(kind, [])), set(after["names"].get(kind, []))
        judged = [_judge_added(kind, n, prefix, strict, after["live"]) for n in sorted(new - old)]
        judged += [_judge_removed(kind, n, strict, live_before) for n in sorted(old - new)]
        for fails, text in judged:
            (failures if fails else notes).append(text)
    for folder in _suite_run_dirs(tmp):
        failures.append(f"left    {KINDS['run-dir']} {folder} in the suite's TMPDIR")

    mode = "strict: every change counts" if strict else "names of other sessions are only noted"
    print(f"leftovers: run prefix {prefix} ({mode})")
    for when, state in (("before", before), ("after ", after)):
        counts = ", ".join(
            f"{len(state['names'].get(kind, []))} {label}s" for kind, label in KINDS.items()
        )
        print(f"  {when}: {counts}")
    for line in notes:
        print(f"  note: {line}")
    if failures:
        for line in failures:
            print(f"  FAIL: {line}")
        print(f"leftovers: FAILED: {len(failures)} change(s) by this run")
        return 1
    print("leftovers: OK: nothing of this run is left, nothing else was removed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="leftovers.py", description=__doc__.split("\n", 1)[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    snap = sub.add_parser("snapshot", help="record the state before the suite, print the prefix")
    snap.add_argument("file", type=Path)
    snap.add_argument("--prefix", help="the run prefix (default: $DAGZ_E2E_RUN, else a new one)")
    comp = sub.add_parser("compare", help="compare with a snapshot; exit 1 on a leak")
    comp.add_argument("file", type=Path)
    comp.add_argument(
        "--tmp", type=Path, help="the suite's TMPDIR: no dagz-run-* may be left in it"
    )
    comp.add_argument(
        "--strict",
        action="store_true",
        default=bool(os.environ.get("CI") or os.environ.get("LEFTOVERS_STRICT")),
        help="every added or removed name fails (default when $CI or $LEFTOVERS_STRICT is set)",
    )
    args = parser.parse_args(argv)
    if args.cmd == "snapshot":
        return snapshot(args.file, args.prefix)
    if not args.file.is_file():
        _fail(f"no snapshot at {args.file}: run `leftovers.py snapshot {args.file}` first")
    return compare(args.file, args.strict, args.tmp)


if __name__ == "__main__":
    sys.exit(main())
