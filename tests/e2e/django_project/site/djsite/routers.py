"""ledger lives on ``other``, everything else on ``default``; ``replica`` mirrors ``default``."""

from __future__ import annotations

from django.db import models


class Router:
    def _db(self, model: type[models.Model]) -> str | None:
        return "other" if model._meta.app_label == "ledger" else None

    def db_for_read(self, model: type[models.Model], **hints: object) -> str | None:
        return self._db(model)

    def db_for_write(self, model: type[models.Model], **hints: object) -> str | None:
        return self._db(model)

    def allow_migrate(self, db: str, app_label: str, **hints: object) -> bool:
        if app_label == "ledger":
            return db == "other"
        return db == "default"
