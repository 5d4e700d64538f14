"""Webhooks end to end: signed POSTs, a real worker draining the queue, beat, a killed worker."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from celery.beat import Scheduler
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from app import db, drains
from app.celery import app as celery_app
from app.fakes.ultravox import call_at, generate_calls, send_webhook
from app.models import (
    Call,
    CronJobLog,
    EnrichmentItem,
    EnrichmentType,
    ProcessingStatus,
    WebhookEvent,
)
from app.webhooks import tasks
from tests.helpers import ApiClient, Worker, events_held, make_agency, wait_for
from tests.integration.test_cli import callsync

pytestmark = pytest.mark.e2e

SECRET = "whsec_e2e"


@pytest.fixture
def agency(session: Session) -> uuid.UUID:
    return make_agency(session, webhook_secret=SECRET)


def count(session: Session, model: Any, *where: Any) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def all_completed(session: Session, total: int) -> bool:
    return count(session, WebhookEvent, WebhookEvent.status == ProcessingStatus.completed) == total


def test_a_posted_event_reaches_its_call_without_waiting_for_beat(
    client: ApiClient, agency: uuid.UUID, session: Session
) -> None:
    [call] = generate_calls(1, live_every=0)
    url = f"{client.base_url}/webhooks/ultravox/{agency}"
    assert send_webhook(url, "call.ended", call_at(call, "call.ended"), SECRET).status_code == 204

    def stored() -> Call | None:
        session.expire_all()
        return session.scalars(select(Call)).one_or_none()

    row = wait_for(stored, timeout=10, what="the call row")
    assert row.ultravox_call_id == uuid.UUID(call["callId"])
    assert row.ended is not None
    wait_for(
        lambda: count(session, EnrichmentItem, EnrichmentItem.type == EnrichmentType.transcript),
        timeout=10,
        what="its transcript item",
    )


def test_beats_tick_drains_a_retry_that_came_due(
    agency: uuid.UUID, session: Session, worker: Worker
) -> None:
    [call] = generate_calls(1, live_every=0)
    event = WebhookEvent(
        agency_id=agency,
        event_type="call.ended",
        payload={"event": "call.ended", "call": call},
        status=ProcessingStatus.failed,
        attempts=1,
        next_retry_at=func.now(),
    )
    session.add(event)
    session.commit()
    scheduler = Scheduler(app=celery_app, lazy=False)
    scheduler.apply_entry(scheduler.schedule["process-webhook-queue"])
    wait_for(lambda: all_completed(session, 1), timeout=15, what="the retry to be applied")
    assert count(session, Call) == 1
    run = wait_for(
        lambda: session.scalars(select(CronJobLog).where(CronJobLog.status == "completed")).first(),
        what="the tick's cron_job_logs row",
    )
    assert (run.job_name, run.result) == ("process-webhook-queue", {"due": 1, "drain_sent": True})
    worker.wait_idle()


def test_a_worker_killed_mid_batch_loses_nothing_and_applies_nothing_twice(
    agency: uuid.UUID, session: Session, worker: Worker
) -> None:
    calls = generate_calls(2000, live_every=0)
    rows = [
        {
            "agency_id": agency,
            "event_type": "call.ended",
            "payload": {"event": "call.ended", "call": call_at(call, "call.ended")},
        }
        for call in calls
    ]
    with db.session_scope() as setup:
        setup.execute(insert(WebhookEvent), rows[:1])
    drains.WEBHOOKS.request()
    wait_for(lambda: all_completed(session, 1), what="the first event")
    with db.session_scope() as setup:
        setup.execute(insert(WebhookEvent), rows[1:])
        # The first call's event again, as call.billed: a batch that includes it must wait.
        setup.execute(
            insert(WebhookEvent),
            [{**rows[0], "event_type": "call.billed", "payload": {"call": calls[0]}}],
        )
    with db.get_sessionmaker()() as blocker:
        blocker.execute(
            select(Call)
            .where(Call.ultravox_call_id == uuid.UUID(calls[0]["callId"]))
            .with_for_update()
        )
        drains.WEBHOOKS.request()
        wait_for(lambda: waiting_on_a_lock(session), what="a batch blocked mid-apply")
        in_flight = events_held()
        worker.kill()
        blocker.rollback()
    try:
        assert in_flight > 0
        # The killed batch rolls back once its backend finds the connection gone.
        wait_for(lambda: events_held() == 0, what="the killed batch to roll back")
    finally:
        worker.start()
    drains.WEBHOOKS.request()
    wait_for(lambda: all_completed(session, len(rows) + 1), timeout=60, what="every event")
    assert count(session, Call) == len(calls)
    assert count(session, Call, Call.ended.is_not(None)) == len(calls)
    transcripts = count(session, EnrichmentItem, EnrichmentItem.type == EnrichmentType.transcript)
    assert transcripts == len(calls)  # one transcript each: applied once
    assert count(session, Call, Call.last_event == "call.billed") == 1
    assert count(session, WebhookEvent, WebhookEvent.attempts > 0) == 0  # no attempt was lost
    worker.wait_idle()


def waiting_on_a_lock(session: Session) -> bool:
    session.expire_all()
    waiting = session.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    )
    session.rollback()
    return bool(waiting)


def enqueue(session: Session, agency: uuid.UUID, call: dict[str, Any]) -> uuid.UUID:
    event = WebhookEvent(
        agency_id=agency, event_type="call.ended", payload={"event": "call.ended", "call": call}
    )
    session.add(event)
    session.commit()
    return event.id


def test_a_failing_event_is_retried_until_dead_then_replayed(
    agency: uuid.UUID, session: Session, worker: Worker
) -> None:
    [call] = generate_calls(1, live_every=0)
    bad = enqueue(session, agency, call | {"created": "not-a-date"})

    def failed_after(attempt: int) -> WebhookEvent:
        def tried() -> WebhookEvent | None:
            row = session.get_one(WebhookEvent, bad, populate_existing=True)
            session.rollback()
            return row if (row.status, row.attempts) == ("failed", attempt) else None

        return wait_for(tried, what=f"attempt {attempt}")

    for attempt in range(1, 6):
        tasks.process_webhook_queue.delay()  # beat's tick
        row = failed_after(attempt)
        assert row.error_message is not None
        assert "not-a-date" in row.error_message
        if attempt < 5:  # time passes: the backoff is over
            session.execute(update(WebhookEvent).values(next_retry_at=func.now()))
            session.commit()
    dead = session.get_one(WebhookEvent, bad, populate_existing=True)
    assert (dead.attempts, dead.max_attempts, dead.next_retry_at) == (5, 5, None)
    assert tasks.process_webhook_queue.apply().get() == {"due": 0, "drain_sent": False}

    result = callsync("webhooks", "replay", "--id", str(bad))
    assert result.returncode == 0, result.stderr
    replayed, reason = result.stdout.strip().splitlines()
    assert replayed == "1 dead event(s) queued again"
    assert reason.startswith("  1: ")
    assert "not-a-date" in reason
    assert failed_after(1).next_retry_at is not None  # alive again, with its retries ahead
    worker.wait_idle()


def test_replay_by_agency_touches_only_that_agencys_dead_events(
    agency: uuid.UUID, session: Session, worker: Worker
) -> None:
    other = make_agency(session, name="Other")
    first, second = generate_calls(2, live_every=0)
    mine, theirs = enqueue(session, agency, first), enqueue(session, other, second)
    session.execute(update(WebhookEvent).values(status="failed", attempts=5))
    session.commit()
    assert callsync("webhooks", "replay").returncode == 2  # which events must be said

    result = callsync("webhooks", "replay", "--agency", str(agency))
    assert result.stdout.splitlines() == ["1 dead event(s) queued again", "  1: no reason recorded"]
    wait_for(lambda: all_completed(session, 1), what="the replayed event to be applied")
    assert session.get_one(WebhookEvent, theirs).status == ProcessingStatus.failed
    assert session.get_one(WebhookEvent, mine).status == ProcessingStatus.completed

    assert callsync("webhooks", "replay", "--all").stdout.startswith("1 dead event(s) queued again")
    wait_for(lambda: all_completed(session, 2), what="the other agency's event")
    worker.wait_idle()
