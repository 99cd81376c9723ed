"""A copy of the example suite (examples/shop) as a suite written for serial runs has it: no dagz
in its conftests (no configure() of any family — PostgreSQL, MariaDB, Redis, RabbitMQ —, no
dagz.otel), its clean-up before each test always on (the SQL tables, the shop's Redis keys and
RabbitMQ queues). `make demo` runs it under zero-config auto mode; tests/e2e/test_auto_shop.py
too.

    python scripts/shop_without_dagz.py DEST
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

SHOP = Path(__file__).resolve().parent.parent / "examples" / "shop"
#: What the fixtures of tests/conftest.py ask to know whether the cache and the queue were
#: rerouted (then dagz's `prepare` empties them); a serial suite always cleans them itself.
SERVICE_REROUTED = "return self.asked != self.landed"


def strip_dagz(conftest: str) -> str:
    """The example's root conftest without its dagz part: the configure() calls (PG_CONFIG,
    MYSQL_CONFIG, REDIS_CONFIG, RABBITMQ_CONFIG) and the dagz.otel block go; `_not_rerouted`
    has nothing to bypass; the clean-up before each test always runs (a serial suite does not
    know whether it was rerouted)."""
    start = conftest.index("try:\n    from dagz.integ")
    end = conftest.index("# -- the base databases")
    out = conftest[:start] + "PG_CONFIG = None\nMYSQL_CONFIG = None\n\n\n" + conftest[end:]
    for prop in ("pg", "mysql"):
        old = f"return self.{prop}_database != SETTINGS.{prop}_database"
        if out.count(old) != 1:
            raise SystemExit(f"examples/shop/conftest.py changed: no {old!r}")
        out = out.replace(old, "return False")
    if re.search(r"^\s*(import|from) dagz|_CONFIG\.configure", out, re.MULTILINE):
        raise SystemExit("examples/shop/conftest.py: a dagz import is left after stripping")
    return out


def strip_service_checks(conftest: str) -> str:
    """tests/conftest.py without its question "was the cache / the queue rerouted?": the
    fixtures then always delete the shop's keys and queues before each test."""
    if conftest.count(SERVICE_REROUTED) != 1:
        raise SystemExit(f"examples/shop/tests/conftest.py changed: no {SERVICE_REROUTED!r}")
    return conftest.replace(SERVICE_REROUTED, "return False")


def copy_without_dagz(dest: Path) -> Path:
    """Copies the example to `dest` (replaced) and strips it; returns `dest`."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(SHOP, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    conftest = dest / "conftest.py"
    conftest.write_text(strip_dagz(conftest.read_text()))
    fixtures = dest / "tests" / "conftest.py"
    fixtures.write_text(strip_service_checks(fixtures.read_text()))
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/shop_without_dagz.py DEST")
    copy_without_dagz(Path(sys.argv[1]))
