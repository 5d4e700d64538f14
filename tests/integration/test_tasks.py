"""Task-level tests: our tasks sent through the broker and run by Celery's in-process worker
(`inprocess_worker`, a thread of this process), against real PostgreSQL and the fakes. Tests of
worker processes, their signals, kills and restarts are in tests/e2e and tests/chaos."""

from __future__ import annotations

from celery.beat import Scheduler
from celery.worker import WorkController
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app import drains
from app.campaigns import tasks as campaign_tasks
from app.celery import app as celery_app
from app.fakes.elevenlabs import FakeElevenLabs
from app.fakes.ultravox import call_at, generate_calls
from app.models import CronJobLog, ProcessingStatus, WebhookEvent
from tests.campaigns import all_day, enroll
from tests.helpers import make_agency, wait_for


def test_a_beat_tick_runs_and_leaves_one_completed_log(
    session: Session, inprocess_worker: WorkController
) -> None:
    scheduler = Scheduler(app=celery_app, lazy=False)
    scheduler.apply_entry(scheduler.schedule["process-webhook-queue"])

    def finished() -> CronJobLog | None:
        session.expire_all()
        return session.scalars(select(CronJobLog).where(CronJobLog.status != "running")).first()

    run = wait_for(finished, what="the tick to finish")
    assert (run.job_name, run.status, run.result) == (
        "process-webhook-queue",
        "completed",
        {"due": 0, "drain_sent": False},
    )


def test_a_drain_whose_batch_was_full_sends_the_next_until_none_is_left(
    session: Session, inprocess_worker: WorkController
) -> None:
    agency = make_agency(session)
    rows = [
        {
            "agency_id": agency,
            "event_type": "call.started",
            "payload": {"event": "call.started", "call": call_at(call, "call.started")},
        }
        for call in generate_calls(450, live_every=0)
    ]
    session.execute(insert(WebhookEvent), rows)
    session.commit()
    drains.WEBHOOKS.request()  # one request; batches of 200: three drains in a chain

    def pending() -> bool:
        session.expire_all()
        left = select(func.count()).where(WebhookEvent.status != ProcessingStatus.completed)
        return session.scalar(left) == 0

    wait_for(pending, what="every event to be applied")


def test_the_orchestrators_tick_fans_out_one_run_per_campaign(
    session: Session, inprocess_worker: WorkController, fake_elevenlabs: FakeElevenLabs
) -> None:
    for _ in range(3):
        enroll(session, all_day(session))
    campaign_tasks.campaign_orchestrator.delay()
    wait_for(lambda: len(fake_elevenlabs.dials) == 3, what="a dial for each campaign's lead")
