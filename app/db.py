"""The engine, session factory and transaction scope shared by tasks, services and the API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings


@lru_cache
def get_engine() -> Engine:
    # hide_parameters: statements carry ENCRYPTION_KEY, and errors must not print it.
    return create_engine(
        get_settings().database_url, pool_pre_ping=True, pool_size=10, hide_parameters=True
    )


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: commit on exit, roll back on an exception."""
    with get_sessionmaker().begin() as session:
        yield session


def dispose_after_fork() -> None:
    """A forked worker child must not reuse its parent's pooled connections."""
    if get_engine.cache_info().currsize:
        get_engine().dispose(close=False)


def error_reason(error: DBAPIError) -> str:
    """The database's own message, first line: e.g. `invalid input syntax for type ...`."""
    return str(error.orig).strip().splitlines()[0]
