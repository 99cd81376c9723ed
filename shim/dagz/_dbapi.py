"""What the database engines (`dagz.engines`) share about choosing a DB-API driver."""

from __future__ import annotations

import importlib
from typing import Any


def first_importable(*names: str) -> tuple[str, Any] | None:
    """(name, module) of the first of `names` that imports, in order of preference."""
    for name in names:
        try:
            return name, importlib.import_module(name)
        except ImportError:
            continue
    return None
