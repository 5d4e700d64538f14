"""A database migrated from nothing shows the old callers' surface at once: the schedule in
virsyn_cron_jobs before beat ever ran, and the pg_cron jobs' functions notifying beat."""

from __future__ import annotations

import os
import select
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from app import migrations
from app.wake import CHANNEL

URL = f"postgresql+psycopg2://postgres@127.0.0.1:5432/callsync_fresh_{os.getpid()}"


@pytest.fixture
def fresh() -> Iterator[Engine]:
    migrations.drop_database(URL)
    migrations.upgrade(URL)
    engine = create_engine(URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()
    migrations.drop_database(URL)


def test_the_schedule_and_the_wake_functions_are_there_once_migrated(fresh: Engine) -> None:
    with fresh.connect() as listener, fresh.connect() as caller:
        rows = caller.execute(text("SELECT jobname, schedule FROM virsyn_cron_jobs")).all()
        assert ("bubble-sync-retry", "*/5 * * * *") in rows
        assert len(rows) == 9
        listener.exec_driver_sql(f"LISTEN {CHANNEL}")
        caller.execute(text("SELECT invoke_bubble_sync_processor(), invoke_bubble_sync_retry()"))
        raw = listener.connection.driver_connection
        assert raw is not None
        heard: set[str] = set()
        while len(heard) < 2 and select.select([raw], [], [], 5)[0]:
            raw.poll()
            heard |= {notify.payload for notify in raw.notifies}
        assert heard == {"bubble-sync-processor", "bubble-sync-retry"}
