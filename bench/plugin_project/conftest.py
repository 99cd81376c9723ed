"""A DAGZ-style conftest for the plugin-overhead benchmark: PG configured, no prepare."""

from dagz.integ.psycopg2 import PG_CONFIG

PG_CONFIG.configure(PG_CONFIG.default_rewrite_db_name, PG_CONFIG.default_should_reroute, None)
