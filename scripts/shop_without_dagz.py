"""A copy of the example suite (examples/shop) as a suite written for serial runs has it: no dagz
in its conftest (no configure(), no dagz.otel), its clean-up before each test always on, and
without the Redis/RabbitMQ tests (auto mode covers the SQL families; those need their DAGZ
configuration). `make demo` runs it under zero-config auto mode; tests/e2e/test_auto_shop.py too.

    python scripts/shop_without_dagz.py DEST
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"
#: Tests of the example that need REDIS_CONFIG / RABBITMQ_CONFIG.
SERVICE_TESTS = ("test_cache.py", "test_tasks.py")


def strip_dagz(conftest: str) -> str:
    """The example's root conftest without its dagz part: the configure() calls and the
    dagz.otel block go; `_not_rerouted` has nothing to bypass; the clean-up before each test
    always runs (a serial suite does not know whether it was rerouted)."""
    start = conftest.index("try:\n    from dagz.integ")
    end = conftest.index("# -- the base databases")
    out = conftest[:start] + "PG_CONFIG = None\nMYSQL_CONFIG = None\n\n\n" + conftest[end:]
    for prop in ("pg", "mysql"):
        old = f"return self.{prop}_database != SETTINGS.{prop}_database"
        if out.count(old) != 1:
            raise SystemExit(f"examples/shop/conftest.py changed: no {old!r}")
        out = out.replace(old, "return False")
    if re.search(r"^\s*(import|from) dagz", out, re.MULTILINE):
        raise SystemExit("examples/shop/conftest.py: a dagz import is left after stripping")
    return out


def copy_without_dagz(dest: Path) -> Path:
    """Copies the example to `dest` (replaced) and strips it; returns `dest`."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(SHOP, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    conftest = dest / "conftest.py"
    conftest.write_text(strip_dagz(conftest.read_text()))
    for name in SERVICE_TESTS:
        (dest / "tests" / name).unlink(missing_ok=True)
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/shop_without_dagz.py DEST")
    copy_without_dagz(Path(sys.argv[1]))
