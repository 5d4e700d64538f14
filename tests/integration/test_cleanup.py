"""cleanup: what is past retention goes, in batches; everything else stays."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.maintenance import tasks
from app.models import CronJobLog, ProcessingStatus, SyncOperation, SyncQueueItem


def test_old_completed_rows_and_logs_go_in_batches(session: Session) -> None:
    old, recent = func.now() - timedelta(days=40), func.now() - timedelta(days=1)
    items = [
        SyncQueueItem(
            table_name="t",
            record_id=str(n),
            operation=SyncOperation.INSERT,
            status=ProcessingStatus.completed,
            processed_at=old,
        )
        for n in range(5)
    ]
    items += [
        SyncQueueItem(
            table_name="t",
            record_id="recent",
            operation=SyncOperation.INSERT,
            status=ProcessingStatus.completed,
            processed_at=recent,
        ),
        SyncQueueItem(
            table_name="t",
            record_id="failed",
            operation=SyncOperation.INSERT,
            status=ProcessingStatus.failed,
            processed_at=old,
        ),
    ]
    session.add_all(
        [
            *items,
            CronJobLog(job_name="x", started_at=old),
            CronJobLog(job_name="y", started_at=recent),
        ]
    )
    session.commit()
    assert tasks.prune("sync_queue", retention=timedelta(days=30), batch=2) == 5
    assert tasks.prune("cron_job_logs", retention=timedelta(days=30), batch=2) == 1
    left = session.scalars(select(SyncQueueItem.record_id).order_by(SyncQueueItem.record_id))
    assert list(left) == ["failed", "recent"]
    assert list(session.scalars(select(CronJobLog.job_name))) == ["y"]


def test_the_daily_run_reports_what_it_deleted(session: Session) -> None:
    session.execute(
        text(
            "INSERT INTO cron_job_logs (job_name, started_at) "
            "VALUES ('old', now() - interval '90 days')"
        )
    )
    session.commit()
    result = tasks.cleanup()
    assert result == {
        "webhook_queue": 0,
        "enrichment_queue": 0,
        "sync_queue": 0,
        "webhook_logs": 0,
        "cron_job_logs": 1,
    }
