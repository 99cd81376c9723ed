"""`dagz` console command."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dagz", description="dagz: per-worker databases for pytest"
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser(
        "shim-path", help="print the path of libdagz.so (for LD_PRELOAD=$(dagz shim-path))"
    )
    sub.add_parser("version", help="print the package and shim versions")
    args = parser.parse_args(argv)
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

        print(f"dagz {__version__} (shim {_shim.VERSION})")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
