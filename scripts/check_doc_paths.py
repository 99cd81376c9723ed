"""Every repository path a document names (in backticks, with a `/`) exists.

python scripts/check_doc_paths.py docs/ARCHITECTURE.md README.md
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = ("src/", "shim/", "tests/", "scripts/", "docs/", "bench/", "examples/", "fuzz/")


def missing(doc: Path) -> list[str]:
    found = []
    for token in re.findall(r"`([^`\s]+)`", doc.read_text()):
        path = token.rstrip(".,:;")
        if path.startswith(TOP) and "<" not in path and not (ROOT / path).exists():
            found.append(path)
    return found


def main(argv: list[str]) -> int:
    bad = [f"{doc}: names {p}, which does not exist" for doc in argv for p in missing(Path(doc))]
    for line in bad:
        print(line, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
