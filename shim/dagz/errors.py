"""dagz's errors: one root, `DagzError`, whose message always starts with ``dagz:``."""

from __future__ import annotations


class DagzError(RuntimeError):
    """A refusal or failure of dagz; its message starts with `dagz:`."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg if msg.startswith("dagz:") else f"dagz: {msg}")


class EngineError(DagzError):
    """A failure of a database utility (truncate, clone, drop, fingerprint, provision, listing):
    one line that names the database and never holds a password."""
