"""Settings of the e2e Django project: ``DZ_DJ_ENGINE`` (``pg`` or ``mysql``) picks the server,
``DZ_DJ_NAME`` the database name (the e2e test gives each run a fresh ``dz_…`` name).

Aliases: ``default`` (apps shop, auth, contenttypes; test database ``test_<NAME>``), ``other``
(app ledger; ``TEST["NAME"]`` = ``<NAME>_ot``, no dependencies) and ``replica`` (a ``MIRROR`` of
``default``)."""

from __future__ import annotations

import os

ENGINE = os.environ.get("DZ_DJ_ENGINE", "pg")
NAME = os.environ["DZ_DJ_NAME"]

if ENGINE == "pg":
    _SERVER: dict[str, object] = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "USER": "postgres",
        "PASSWORD": "",
    }
    _TEST: dict[str, object] = {}
elif ENGINE == "mysql":
    _SERVER = {
        "ENGINE": "django.db.backends.mysql",
        "HOST": "127.0.0.1",
        "PORT": "3306",
        "USER": "root",
        "PASSWORD": "",
        "OPTIONS": {"charset": "utf8mb4"},
    }
    _TEST = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
else:
    raise RuntimeError(f"DZ_DJ_ENGINE={ENGINE!r}: use pg or mysql")

DATABASES = {
    "default": {**_SERVER, "NAME": NAME, "TEST": dict(_TEST)},
    "other": {
        **_SERVER,
        "NAME": f"{NAME}_o",
        "TEST": {**_TEST, "NAME": f"{NAME}_ot", "DEPENDENCIES": []},
    },
    "replica": {**_SERVER, "NAME": NAME, "TEST": {**_TEST, "MIRROR": "default"}},
}
DATABASE_ROUTERS = ["djsite.routers.Router"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "shop",
    "ledger",
]
SECRET_KEY = "dagz-e2e-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
