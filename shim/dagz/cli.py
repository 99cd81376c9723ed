"""`dagz` console command.

    dagz shim-path                 path of libdagz.so (for LD_PRELOAD=$(dagz shim-path))
    dagz version                   package and shim versions
    dagz db list [options]         the worker databases dagz owns on a server
    dagz db drop --all [options]   drop them all, half-built ones included
    dagz db drop --base NAME       drop the finished ones copied from NAME
    dagz db drop ... --incomplete  also (or, alone: only) the half-built ones
    dagz report merge TRACE... -o OUT [--junit OUT.xml IN.xml...] [--durations OUT IN...]
                                   the shards of one suite (--dagz-shard) as one trace and
                                   summary, one JUnit XML (see dagz.report)

A database is dagz's when both hold: its comment is a dagz stamp (see `dagz.engines.warm`), and
its name is a worker name of the base the stamp names (``<base>_jwNN`` with the default
template, or the template of the policy in ``DAGZ_POLICY``; or that followed by ``_fN``, the
fresh name of a run whose usual copy could not be rebuilt, `dagz.fresh`) — a stamp-like
comment on any other database is ignored. A half-built copy (the stamp still says "building": a
killed run's, or one a run is making right now) is listed as ``(incomplete)`` and dropped only
when asked (``--incomplete`` or ``--all``). Connection options work like psql's and mysql's:
``--host`` (127.0.0.1), ``--port`` (5432 / 3306), ``--user`` (postgres / root), ``--password``
(else ``PGPASSWORD`` / ``MYSQL_PWD``); ``--engine pg|mysql`` (default: both; an unreachable
server is then only reported).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from typing import Any

_ENGINES = ("pg", "mysql", "redis", "rabbitmq")
_DEFAULTS = {"pg": (5432, "postgres"), "mysql": (3306, "root"), "redis": (6379, None)}
_DEFAULTS["rabbitmq"] = (5672, "guest")  # worker vhosts (management API on port 15672)


def _db_parser(sub: Any) -> None:
    db = sub.add_parser("db", help="list or drop the worker databases dagz owns on a server")
    actions = db.add_subparsers(dest="action", required=True)
    for name, text in (
        ("list", "list them: name, base, fingerprint, size, age"),
        ("drop", "drop them: --all, or --base NAME; half-built ones with --incomplete"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument(
            "--engine", choices=_ENGINES, help="pg, mysql, redis or rabbitmq (default: all)"
        )
        p.add_argument("--host", default="127.0.0.1", help="server host (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="server port (default 5432 / 3306)")
        p.add_argument("--user", help="user (default postgres / root)")
        p.add_argument("--password", help="password (default: PGPASSWORD / MYSQL_PWD)")
        if name == "drop":
            which = p.add_mutually_exclusive_group()
            which.add_argument(
                "--all", action="store_true", help="every database dagz owns, half-built too"
            )
            which.add_argument("--base", help="the finished ones copied from this base database")
            p.add_argument(
                "--incomplete",
                action="store_true",
                help="also the half-built ones (alone: only those); one may be being built now",
            )
            p.add_argument("--dry-run", action="store_true", help="only say what would go")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dagz", description="dagz: per-worker databases for pytest"
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser(
        "shim-path", help="print the path of libdagz.so (for LD_PRELOAD=$(dagz shim-path))"
    )
    sub.add_parser("version", help="print the package and shim versions")
    _db_parser(sub)
    from dagz import report

    report.add_parser(sub)
    args = parser.parse_args(argv)
    nothing = args.cmd == "db" and args.action == "drop"
    if nothing and not (args.all or args.base or args.incomplete):
        parser.error("dagz db drop: say which: --all, --base NAME or --incomplete")
    if args.cmd == "shim-path":
        from dagz._shim import shim_path

        path = shim_path()
        if not path.exists():
            print(f"dagz: libdagz.so not found at {path}", file=sys.stderr)
            return 1
        print(path)
        return 0
    if args.cmd == "version":
        from dagz import __version__, _shim

        print(f"dagz {__version__} (shim {_shim.version()})")
        return 0
    if args.cmd == "db":
        return _db(args)
    if args.cmd == "report":
        return report.main(args)
    return 2


def _connect_kwargs(engine: str, args: argparse.Namespace) -> dict[str, object]:
    port, user = _DEFAULTS[engine]
    kwargs: dict[str, object] = {
        "host": args.host,
        "port": args.port or port,
        "user": args.user or user,
    }
    password = args.password
    if password is None and engine == "mysql":
        password = os.environ.get("MYSQL_PWD")
    if password is not None:
        kwargs["password"] = password
    return kwargs


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _age(created: datetime | None) -> str:
    if created is None:
        return "?"
    seconds = int((datetime.now(timezone.utc) - created).total_seconds())  # noqa: UP017
    if seconds < 0:
        return "0s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _db(args: argparse.Namespace) -> int:
    from dagz.engines import for_engine

    engines = [args.engine] if args.engine else list(_ENGINES)
    rows: list[tuple[str, Any, dict[str, object]]] = []
    failures: list[tuple[str, str]] = []
    for engine in engines:
        kwargs = _connect_kwargs(engine, args)
        try:
            owned = for_engine(engine).list_owned(**kwargs)
        except Exception as exc:
            failures.append((engine, " ".join(str(exc).removeprefix("dagz: ").split())))
            continue
        rows += [(engine, item, kwargs) for item in owned]
    # An engine asked for (--engine), or every engine, unreadable: an error (exit 1). One of
    # the default two unreadable: a warning, and the other is still listed (exit 0).
    fatal = bool(args.engine) or len(failures) == len(engines)
    for engine, text in failures:
        if fatal:
            print(f"dagz: error: {engine}: {text}", file=sys.stderr)
        else:
            print(
                f"dagz: warning: {engine} skipped (not asked for with --engine): {text}",
                file=sys.stderr,
            )
    if fatal and failures:
        return 1
    if args.action == "list":
        _print_table(
            [
                (
                    engine,
                    item.name,
                    item.stamp.base,
                    item.stamp.fingerprint[:12] if item.stamp.complete else "(incomplete)",
                    _size(item.size),
                    _age(item.stamp.created),
                )
                for engine, item, _kw in rows
            ]
        )
        return 0
    return _drop(args, rows)


def _drop(args: argparse.Namespace, rows: list[tuple[str, Any, dict[str, object]]]) -> int:
    from dagz.engines import for_engine
    from dagz.lease import in_use_elsewhere

    chosen = [r for r in rows if _chosen(args, r[1])]
    left = [
        r for r in rows if not r[1].stamp.complete and r not in chosen and _chosen(args, r[1], True)
    ]
    status = 0
    for engine, item, kwargs in chosen:
        words = f"base {item.stamp.base}" + ("" if item.stamp.complete else ", incomplete")
        if args.dry_run:
            print(f"would drop {engine} {item.name} ({words})")
            continue
        try:
            if in_use_elsewhere(engine, item.name, kwargs):
                print(f"skipped {engine} {item.name} ({words}): in use by a live run (its lease)")
                continue
            for_engine(engine).drop(item.name, **kwargs)
        except Exception as exc:
            print(f"{exc}", file=sys.stderr)
            status = 1
            continue
        print(f"dropped {engine} {item.name} ({words})")
    for engine, item, _kw in left:
        print(
            f"kept {engine} {item.name} (base {item.stamp.base}, incomplete: half-built, maybe"
            " being built now; --incomplete drops it)"
        )
    if not chosen:
        print("nothing to drop")
    return status


def _chosen(args: argparse.Namespace, item: Any, incomplete: bool = False) -> bool:
    """Whether `drop` drops `item` (with `incomplete`: would, given --incomplete)."""
    if args.all:
        return True
    if item.stamp.complete:
        return args.base is not None and item.stamp.base == args.base
    if not (args.incomplete or incomplete):
        return False
    return args.base is None or item.stamp.base == args.base


def _print_table(rows: list[tuple[str, ...]]) -> None:
    header = ("ENGINE", "DATABASE", "BASE", "FINGERPRINT", "SIZE", "AGE")
    if not rows:
        print("no databases owned by dagz")
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
