"""Seed rows, and a record of each execution outside the database (the e2e test counts them)."""

from __future__ import annotations

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from djsite.recorder import record

SEED = [("apple", "1.20", "A-1"), ("pear", "0.90", "P-1"), ("plum", "2.50", "P-2")]


def forwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    product = apps.get_model("shop", "Product")
    alias = schema_editor.connection.alias
    for name, price, sku in SEED:
        product.objects.using(alias).create(name=name, price=price, sku=sku)
    record(
        "migration",
        migration="shop.0003",
        alias=alias,
        db=schema_editor.connection.settings_dict["NAME"],
    )


def backwards(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("shop", "Product").objects.using(schema_editor.connection.alias).delete()


class Migration(migrations.Migration):
    dependencies = (("shop", "0002_product_sku"),)
    operations = (migrations.RunPython(forwards, backwards),)
