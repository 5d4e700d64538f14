"""A pg_cron job left in place calls invoke_bubble_sync_processor(): beat hears it and the
periodic task runs on a worker at once, not at beat's next tick."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app import db
from app.models import CronJobLog
from tests.helpers import Worker, beat, wait_for

pytestmark = pytest.mark.e2e


def runs(job_name: str) -> int:
    with db.session_scope() as session:
        stmt = select(func.count()).where(
            CronJobLog.job_name == job_name, CronJobLog.status == "completed"
        )
        return int(session.scalar(stmt) or 0)


def test_the_seeds_sql_functions_wake_their_periodic_task(
    session: Session, worker: Worker, tmp_path: Path
) -> None:
    with beat(tmp_path) as log:
        wait_for(lambda: "listening for callsync_wake" in log.read_text(), what="the listener")
        for function, job in (
            ("invoke_bubble_sync_processor", "bubble-sync-processor"),
            ("invoke_bubble_sync_retry", "bubble-sync-retry"),
        ):
            before = runs(job)
            session.execute(text(f"SELECT {function}()"))
            session.commit()
            wait_for(lambda: runs(job) > before, timeout=15, what=job)  # noqa: B023
            assert f"woken by callsync_wake: sending {job}" in log.read_text()
    worker.wait_idle()
