"""Test settings, a database migrated once for the run, and isolation between tests.

The environment is set before any `app` module is imported, because the Celery app reads its
settings at import time. Worker processes started by tests inherit the same environment.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

TEST_DATABASE = f"callsync_test_{os.getpid()}"
TEST_DATABASE_URL = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{TEST_DATABASE}"

os.environ.update(
    DATABASE_URL=TEST_DATABASE_URL,
    REDIS_URL="redis://127.0.0.1:6379/15",
    ENCRYPTION_KEY=secrets.token_urlsafe(24),
    JWT_SECRET=secrets.token_urlsafe(24),
    SERVICE_TOKEN=secrets.token_urlsafe(24),
    # Fast transient retries: the faults are injected, the waits need not be real.
    HTTP_RETRY_INITIAL_SECONDS="0.05",
    HTTP_RETRY_MAX_SECONDS="0.2",
    TASK_RETRY_SECONDS="0.2",
)

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app import db, migrations
from app.models import Base


@pytest.fixture(scope="session", autouse=True)
def database() -> Iterator[str]:
    """A fresh database for this run, migrated to head by Alembic, dropped at the end."""
    _drop_database()
    migrations.upgrade(TEST_DATABASE_URL)
    yield TEST_DATABASE_URL
    db.get_engine().dispose()
    _drop_database()


def _drop_database() -> None:
    admin = create_engine(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(autouse=True)
def clean_tables(database: str) -> Iterator[None]:
    """Every test starts from empty tables (workers in other processes see committed rows)."""
    yield
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with db.session_scope() as session:
        session.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture
def session() -> Iterator[Session]:
    """A session whose work the test commits or not; closed afterwards."""
    with db.get_sessionmaker()() as session:
        yield session
