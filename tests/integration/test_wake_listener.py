"""The wake listener hears pg_notify('callsync_wake', name), sends known names only, and
listens again after losing its connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.config import get_settings
from app.wake import CHANNEL, WakeListener
from tests.helpers import wait_for

LISTENERS = text(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = :query"
)


@pytest.fixture
def heard() -> Iterator[list[str]]:
    names: list[str] = []
    listener = WakeListener(get_settings().database_url, {"bubble-sync-retry"}, names.append)
    listener.start()
    yield names
    listener.stop()


def listening(session: Session) -> int | None:
    session.rollback()  # a fresh snapshot of pg_stat_activity
    pid: int | None = session.scalar(LISTENERS, {"query": f"LISTEN {CHANNEL}"})
    return pid


def notify(session: Session, name: str) -> None:
    session.execute(text("SELECT pg_notify(:channel, :name)"), {"channel": CHANNEL, "name": name})
    session.commit()


def test_it_sends_known_names_and_listens_again_after_a_lost_connection(
    session: Session, heard: list[str]
) -> None:
    first = wait_for(lambda: listening(session), what="the listener")
    notify(session, "no-such-job")
    notify(session, "bubble-sync-retry")
    wait_for(lambda: heard == ["bubble-sync-retry"], what="the wake")
    session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    session.commit()
    again = wait_for(lambda: (pid := listening(session)) != first and pid, timeout=20, what="again")
    assert again != first
    notify(session, "bubble-sync-retry")
    wait_for(lambda: heard == ["bubble-sync-retry"] * 2, what="the wake after reconnecting")
