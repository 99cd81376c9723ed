"""Engines and sessions for the shop database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from shopapp.settings import Settings, load


def make_engine(settings: Settings | None = None, *, pool_size: int = 5) -> Engine:
    """An engine on the shop database (psycopg 3). Each process makes its own."""
    settings = settings or load()
    return create_engine(
        settings.database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        connect_args={"application_name": "shopapp"},
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed at the end, rolled back on an exception."""
    with factory.begin() as session:
        yield session
