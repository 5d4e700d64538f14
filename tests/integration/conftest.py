"""Fixtures of the integration tests: each starts from empty tables and an empty broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from bench.queue_stats import fill

COMPLETED = 20_000  # rows of each queue table in big_queues


@pytest.fixture(autouse=True)
def _isolated(clean_tables: None) -> None:
    """Every test here uses the database (tests/conftest.py: clean_tables)."""


@pytest.fixture
def big_queues() -> None:
    """Every queue table mostly completed rows, as in production, with its statistics."""
    fill(completed=COMPLETED, sync_completed=COMPLETED)


@pytest.fixture
def statements(session: Session) -> Iterator[list[tuple[str, Any]]]:
    """The SQL sent to PostgreSQL while the test runs, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)
