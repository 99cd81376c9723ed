"""Seed accounts on the ``other`` alias, and a record of each execution outside the database."""

from __future__ import annotations

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from djsite.recorder import record


def forwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    account = apps.get_model("ledger", "Account")
    alias = schema_editor.connection.alias
    for code in ("cash", "bank"):
        account.objects.using(alias).create(code=code)
    record(
        "migration",
        migration="ledger.0002",
        alias=alias,
        db=schema_editor.connection.settings_dict["NAME"],
    )


def backwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("ledger", "Account").objects.using(schema_editor.connection.alias).delete()


class Migration(migrations.Migration):
    dependencies = (("ledger", "0001_initial"),)
    operations = (migrations.RunPython(forwards, backwards),)
