"""Size limits of the Python sources (run by `make lint`), as scripts/rust_size_check.sh does for
Rust: no file over 600 lines outside tests, no function over 80 lines. One line per violation."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

MAX_FILE = 600
MAX_FN = 80
ROOT = Path(__file__).resolve().parent.parent


def violations() -> list[str]:
    files = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in files:
        if name.startswith("tests/") or not (ROOT / name).exists():
            continue
        text = (ROOT / name).read_text()
        if (n := len(text.splitlines())) > MAX_FILE:
            found.append(f"size: {name} has {n} lines (limit {MAX_FILE}: split it by concern)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FN:
                    found.append(
                        f"size: {name}:{node.lineno}: def {node.name} has {length} lines "
                        f"(limit {MAX_FN})"
                    )
    return found


if __name__ == "__main__":
    bad = violations()
    for line in bad:
        print(line, file=sys.stderr)
    sys.exit(1 if bad else 0)
