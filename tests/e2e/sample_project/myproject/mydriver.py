"""A project's own client wrapper, wired to dagz the way the DAGZ API page describes for client
libraries it ships no hook for: the wrapper asks ``PG_CONFIG.maybe_reroute_uri`` for the URI.

The "transport" of this wrapper is one the shim cannot see: it is modelled by connecting inside
``bypass()``, so only the wrapper's own call to dagz decides where the connection lands.
"""

from __future__ import annotations

from typing import Any

import psycopg
from dagz.integ.psycopg import PG_CONFIG

#: Every URI the wrapper was told to use, in order (the tests look at the last one).
URIS: list[str] = []


def connect(uri: str) -> psycopg.Connection[Any]:
    rerouted = PG_CONFIG.maybe_reroute_uri(uri)
    URIS.append(rerouted)
    with PG_CONFIG.bypass():
        return psycopg.connect(rerouted, autocommit=True)


def connect_db(dbname: str) -> psycopg.Connection[Any]:
    """The same for a keyword-style client (``connect(dbname=...)``)."""
    rerouted = PG_CONFIG.maybe_reroute(dbname)
    URIS.append(rerouted)
    with PG_CONFIG.bypass():
        return psycopg.connect(dbname=rerouted, autocommit=True, host="127.0.0.1", user="postgres")
