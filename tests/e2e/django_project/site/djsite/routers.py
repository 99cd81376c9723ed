"""ledger lives on ``other``, everything else on ``default``; ``replica`` mirrors ``default``."""

from __future__ import annotations

from typing import Any


class Router:
    def _db(self, model: Any) -> str | None:
        return "other" if model._meta.app_label == "ledger" else None

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self._db(model)

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return self._db(model)

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        if app_label == "ledger":
            return db == "other"
        return db == "default"
