"""dagz: parallel database tests for pytest — per-worker PostgreSQL/MySQL databases.

The DB-rerouting API lives in `dagz.integ.*` (``PG_CONFIG``, ``MYSQL_CONFIG``); the OpenTelemetry
integration in `dagz.otel`. The pytest plugin is `dagz.plugin` (entry point ``pytest11``).
"""

from __future__ import annotations

__all__ = [
    "__version__",
    "assert_main_worker",
    "assert_main_worker_at",
    "assert_node_mutex",
    "assert_node_mutex_at",
]
__version__ = "0.1.0"

_MARKERS = {
    "assert_main_worker",
    "assert_main_worker_at",
    "assert_node_mutex",
    "assert_node_mutex_at",
}


def __getattr__(name: str) -> object:
    """The marker assertions (`dagz.markers`), imported on first use."""
    if name in _MARKERS:
        from dagz import markers

        return getattr(markers, name)
    raise AttributeError(f"module 'dagz' has no attribute {name!r}")
