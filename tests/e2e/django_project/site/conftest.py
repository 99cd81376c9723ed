"""A DAGZ-style conftest, as a project writes one to isolate its raw SQL, children or a second
database: PG_CONFIG and MYSQL_CONFIG with the defaults (``DZ_DJ_CONFTEST=0``: none, as a project
that only uses pytest-django)."""

from __future__ import annotations

import os

import pytest
from djsite.recorder import record_landing

if os.environ.get("DZ_DJ_CONFTEST", "1") == "1":
    from dagz.integ.psycopg import PG_CONFIG
    from dagz.integ.pymysql import MYSQL_CONFIG

    for cfg in (PG_CONFIG, MYSQL_CONFIG):
        cfg.configure(
            rewrite_db_name=cfg.default_rewrite_db_name,
            should_reroute=cfg.default_should_reroute,
            prepare=None,
        )


@pytest.fixture(autouse=True)
def _record_landing(request: pytest.FixtureRequest) -> None:
    """Every ``django_db`` test records where its aliases landed (so every worker does)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    databases = marker.kwargs.get("databases")
    for alias in ("default", "other", "replica"):
        if (databases is None and alias == "default") or alias in (databases or ()):
            record_landing(alias)
