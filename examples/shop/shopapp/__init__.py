"""shopapp: a small shop backend used as dagz's example project.

Orders, customers, products and inventory live in PostgreSQL (SQLAlchemy 2 over psycopg 3); every
write is also recorded in an audit log on MariaDB/MySQL (mysqlclient). `shopapp.api` serves a
JSON HTTP API over both, `shopapp.migrate` builds both schemas, `shopapp.cli` prints reports.
"""

__version__ = "1.4.0"
