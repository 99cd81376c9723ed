"""dagz: parallel database tests for pytest — per-worker PostgreSQL/MySQL databases.

The DB-rerouting API lives in `dagz.integ.*` (``PG_CONFIG``, ``MYSQL_CONFIG``); the OpenTelemetry
integration in `dagz.otel`. The pytest plugin is `dagz.plugin` (entry point ``pytest11``).
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
