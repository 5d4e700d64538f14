"""Beat's schedule sends a periodic task, a real worker runs it, cron_job_logs records the run."""

from __future__ import annotations

import pytest
from celery.beat import Scheduler
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app import cron_logs, db
from app.celery import app as celery_app
from app.models import CronJobLog
from tests.helpers import Worker, wait_for

pytestmark = pytest.mark.e2e


def test_every_beat_entry_is_named_after_its_seed_function_and_registered() -> None:
    celery_app.loader.import_default_modules()
    for name, entry in celery_app.conf.beat_schedule.items():
        assert entry["task"] == f"periodic.{name}"
        assert entry["task"] in celery_app.tasks
        assert entry["options"]["expires"] > 0


def test_a_beat_tick_runs_on_a_worker_and_leaves_one_completed_log(
    session: Session, worker: Worker
) -> None:
    scheduler = Scheduler(app=celery_app, lazy=False)
    scheduler.apply_entry(scheduler.schedule["process-historical-sync"])

    def finished() -> CronJobLog | None:
        session.expire_all()
        return session.scalars(
            select(CronJobLog).where(CronJobLog.status != "running")
        ).one_or_none()

    run: CronJobLog = wait_for(finished, what="the periodic run to finish")
    assert run.job_name == "process-historical-sync"
    assert run.status == "completed"
    assert run.result == {"processed": 0, "message": "No pending jobs"}
    assert run.completed_at is not None
    assert run.started_at is not None
    assert run.completed_at >= run.started_at


def test_a_failing_run_is_logged_with_its_error(session: Session) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("Ultravox is down")

    with pytest.raises(RuntimeError):
        cron_logs.run_logged("process-historical-sync", broken)
    run = session.scalars(select(CronJobLog)).one()
    assert (run.status, run.error_message, run.result) == (
        "failed",
        "RuntimeError: Ultravox is down",
        None,
    )


def test_beat_publishes_its_schedule_to_virsyn_cron_jobs(session: Session) -> None:
    with db.session_scope() as own:
        cron_logs.publish_schedule(own, celery_app.conf.beat_schedule)
    rows = session.execute(
        text("SELECT jobname, schedule, command, active FROM virsyn_cron_jobs")
    ).all()
    assert sorted(tuple(row) for row in rows) == [
        ("bubble-sync-processor", "* * * * *", "periodic.bubble-sync-processor", True),
        ("bubble-sync-retry", "*/5 * * * *", "periodic.bubble-sync-retry", True),
        ("campaign-orchestrator", "*/5 * * * *", "periodic.campaign-orchestrator", True),
        ("cleanup", "17 3 * * *", "periodic.cleanup", True),
        ("conversation-orchestrator", "*/10 * * * *", "periodic.conversation-orchestrator", True),
        ("process-enrichment-queue", "* * * * *", "periodic.process-enrichment-queue", True),
        ("process-historical-sync", "* * * * *", "periodic.process-historical-sync", True),
        ("process-webhook-queue", "* * * * *", "periodic.process-webhook-queue", True),
        ("sync-salesforce-leads", "*/15 * * * *", "periodic.sync-salesforce-leads", True),
    ]
