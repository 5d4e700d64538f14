"""process-webhook-queue's work in this process: the batch apply, lifecycle order, failures."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.drains import Drained
from app.fakes.ultravox import call_at, generate_calls
from app.models import Call, EnrichmentItem, ProcessingStatus, WebhookEvent
from app.webhooks import service
from tests.helpers import make_agency

LIFECYCLE = ["call.started", "call.joined", "call.ended", "call.billed"]
CALLS = generate_calls(3, live_every=0)


@pytest.fixture
def agency(session: Session) -> uuid.UUID:
    return make_agency(session, webhook_secret="whsec_x")


def enqueue(
    session: Session, agency: uuid.UUID, event: str, call: dict[str, Any] = CALLS[0]
) -> uuid.UUID:
    item = WebhookEvent(
        agency_id=agency, event_type=event, payload={"event": event, "call": call_at(call, event)}
    )
    session.add(item)
    session.commit()
    return item.id


def drain(batch_size: int = 200) -> Drained:
    return service.drain_batch(batch_size=batch_size, on_full_batch=lambda: None)


def stored(session: Session, call: dict[str, Any] = CALLS[0]) -> Call:
    session.expire_all()
    return session.scalars(
        select(Call).where(Call.ultravox_call_id == uuid.UUID(call["callId"]))
    ).one()


def as_row(call: Call) -> dict[str, Any]:
    return {
        "joined": call.joined,
        "ended": call.ended,
        "end_reason": call.end_reason,
        "billed_duration": call.billed_duration,
        "billing_status": call.billing_status,
        "summary": call.summary,
        "last_event": call.last_event,
        "raw": call.raw,
    }


def transcripts(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(EnrichmentItem)) or 0


def test_a_call_is_created_by_its_first_event_and_filled_by_the_next(
    session: Session, agency: uuid.UUID
) -> None:
    enqueue(session, agency, "call.started")
    assert drain() == Drained(claimed=1, done={"applied": 1}, failed=0)
    call = stored(session)
    assert (call.agency_id, call.joined, call.ended) == (agency, None, None)
    assert call.last_event == "call.started"
    for event in LIFECYCLE[1:]:
        enqueue(session, agency, event)
        drain()
    call = stored(session)
    assert call.raw == CALLS[0]
    assert call.billed_duration == CALLS[0]["billedDuration"]
    assert call.last_event == "call.billed"
    assert transcripts(session) == 1  # call.ended set `ended`: the enrichment trigger fired once


@pytest.mark.parametrize("one_batch", [True, False], ids=["one batch", "one batch each"])
def test_events_out_of_order_end_in_the_same_state_as_in_order(
    session: Session, agency: uuid.UUID, one_batch: bool
) -> None:
    for event in LIFECYCLE:
        enqueue(session, agency, event, CALLS[1])
    while drain(batch_size=1 if not one_batch else 10).claimed:
        pass
    in_order = as_row(stored(session, CALLS[1]))
    for event in reversed(LIFECYCLE):
        enqueue(session, agency, event, CALLS[2])
        if not one_batch:
            drain()
    drain()
    late = as_row(stored(session, CALLS[2]))
    assert late["last_event"] == in_order["last_event"] == "call.billed"
    assert late["raw"] == CALLS[2]
    assert late["ended"] is not None
    assert late["billed_duration"] == CALLS[2]["billedDuration"]
    assert transcripts(session) == 2


def test_a_late_older_event_fills_only_what_is_missing(session: Session, agency: uuid.UUID) -> None:
    ended = call_at(CALLS[0], "call.ended") | {"joined": None}  # say the ended payload lacked it
    session.add(WebhookEvent(agency_id=agency, event_type="call.ended", payload={"call": ended}))
    session.commit()
    drain()
    enqueue(session, agency, "call.joined")  # a retry of call.joined arrives late
    drain()
    call = stored(session)
    assert call.last_event == "call.ended"
    assert call.ended is not None  # not cleared by the older event
    assert call.joined is not None  # filled in from it
    assert call.raw["joined"] is None  # the newest payload is kept as it came


def test_a_bad_payload_fails_alone_and_the_rest_of_the_batch_lands(
    session: Session, agency: uuid.UUID
) -> None:
    good = [enqueue(session, agency, "call.ended", call) for call in CALLS[1:]]
    bad_call = CALLS[0] | {"created": "not-a-date"}
    bad = enqueue(session, agency, "call.ended", bad_call)
    assert drain() == Drained(claimed=3, done={"applied": 2}, failed=1)
    rows = {item.id: item for item in session.scalars(select(WebhookEvent))}
    assert all(rows[item].status == ProcessingStatus.completed for item in good)
    failed = rows[bad]
    assert (failed.status, failed.attempts) == (ProcessingStatus.failed, 1)
    assert failed.error_message is not None
    assert 'invalid input syntax for type timestamp with time zone: "not-a-date"' in (
        failed.error_message
    )
    assert failed.next_retry_at is not None


def test_a_full_batch_asks_for_another_drain(session: Session, agency: uuid.UUID) -> None:
    for call in CALLS:
        enqueue(session, agency, "call.ended", call)
    asked: list[bool] = []
    service.drain_batch(batch_size=2, on_full_batch=lambda: asked.append(True))
    service.drain_batch(batch_size=2, on_full_batch=lambda: asked.append(True))
    assert asked == [True]  # 2 of 3, then the last 1
