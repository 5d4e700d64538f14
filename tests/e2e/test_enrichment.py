"""Enrichment end to end: a call.ended webhook becomes a transcript and an analysis on a real
worker, fetched from the fake Ultravox; beat's tick runs a retry that came due."""

from __future__ import annotations

import uuid

import pytest
from celery.beat import Scheduler
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.celery import app as celery_app
from app.fakes.ultravox import FakeUltravox, call_at, send_webhook
from app.models import Call, CronJobLog, EnrichmentItem, ProcessingStatus
from app.ultravox import queries as ultravox_queries
from tests.helpers import ApiClient, Worker, make_agency, wait_for

pytestmark = pytest.mark.e2e

SECRET = "whsec_e2e_enrichment"


def enriched(session: Session) -> Call | None:
    session.expire_all()
    return session.scalars(select(Call).where(Call.analyzed_at.is_not(None))).one_or_none()


def test_a_call_ended_webhook_leads_to_its_transcript_and_analysis(
    client: ApiClient, session: Session, fake_ultravox: FakeUltravox
) -> None:
    agency = make_agency(session, webhook_secret=SECRET)
    call = next(c for c in fake_ultravox.calls if c["ended"] and c["joined"])
    url = f"{client.base_url}/webhooks/ultravox/{agency}"
    assert send_webhook(url, "call.ended", call_at(call, "call.ended"), SECRET).status_code == 204
    row = wait_for(lambda: enriched(session), timeout=20, what="the call's analysis")
    assert row.ultravox_call_id == uuid.UUID(call["callId"])
    assert [m["text"] for m in row.transcript or []] == [
        m["text"] for m in fake_ultravox.messages(call)
    ]
    assert row.analysis is not None
    assert row.analysis["analyzer"] == "rules"
    statuses = session.execute(select(EnrichmentItem.type, EnrichmentItem.status)).all()
    assert sorted(statuses) == [
        ("analysis", ProcessingStatus.completed),
        ("transcript", ProcessingStatus.completed),
    ]


def test_beats_tick_runs_a_retry_that_came_due(
    session: Session, worker: Worker, fake_ultravox: FakeUltravox
) -> None:
    agency = make_agency(session)
    call = next(c for c in fake_ultravox.calls if c["ended"] and c["joined"])
    ultravox_queries.upsert_calls(session, agency, [call])
    session.execute(
        update(EnrichmentItem).values(
            status=ProcessingStatus.failed, attempts=1, next_retry_at=func.now()
        )
    )
    session.commit()
    scheduler = Scheduler(app=celery_app, lazy=False)
    scheduler.apply_entry(scheduler.schedule["process-enrichment-queue"])
    wait_for(lambda: enriched(session), timeout=20, what="the retried transcript, then analysis")
    run = wait_for(
        lambda: session.scalars(
            select(CronJobLog).where(
                CronJobLog.job_name == "process-enrichment-queue", CronJobLog.status == "completed"
            )
        ).first(),
        what="the tick's cron_job_logs row",
    )
    assert run.result == {"due": 1, "drain_sent": True}
    worker.wait_idle()
