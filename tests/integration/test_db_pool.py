"""The engine's pool: a connection that died while idle is replaced, not handed out."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from app import db
from app.config import get_settings


def backend_pid() -> int:
    with db.session_scope() as session:
        return int(session.scalar(text("SELECT pg_backend_pid()")) or 0)


def terminate(pid: int) -> None:
    """From a connection outside the pool, as a database restart would."""
    outside = create_engine(get_settings().database_url, poolclass=NullPool)
    with outside.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    outside.dispose()


def test_a_connection_killed_while_idle_is_replaced_at_checkout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db.get_engine().dispose()
    first = backend_pid()
    assert backend_pid() == first  # the pool hands the same connection out again
    terminate(first)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # as if it had been idle long
    assert backend_pid() not in (0, first)  # pinged, found dead, replaced: no error
