"""A DAGZ-style conftest, as a project writes one to isolate its raw SQL, children or a second
database: PG_CONFIG and MYSQL_CONFIG with the defaults (``DZ_DJ_CONFTEST=0``: none, as a project
that only uses pytest-django)."""

from __future__ import annotations

import os

if os.environ.get("DZ_DJ_CONFTEST", "1") == "1":
    import dagz.integ.mysqlclient  # noqa: F401 - hooks MySQLdb (same MYSQL_CONFIG)
    import dagz.integ.psycopg2  # noqa: F401 - hooks psycopg2 (same PG_CONFIG)
    from dagz.integ.psycopg import PG_CONFIG
    from dagz.integ.pymysql import MYSQL_CONFIG

    for cfg in (PG_CONFIG, MYSQL_CONFIG):
        cfg.configure(
            rewrite_db_name=cfg.default_rewrite_db_name,
            should_reroute=cfg.default_should_reroute,
            prepare=None,
        )
