"""What the database engines (`dagz.engines`) share about choosing a DB-API driver."""

from __future__ import annotations

import importlib
from typing import Any

from dagz.errors import EngineError


def first_importable(*names: str) -> tuple[str, Any] | None:
    """(name, module) of the first of `names` that imports, in order of preference."""
    for name in names:
        try:
            return name, importlib.import_module(name)
        except ImportError:
            continue
    return None


def driver(family: str, needs: str, *names: str) -> tuple[str, Any]:
    """(name, module) of the first importable of `names`; else an `EngineError` saying that the
    `family` utilities need `needs`."""
    found = first_importable(*names)
    if found is None:
        raise EngineError(f"dagz: {family} utilities need {needs}; neither is importable")
    return found
