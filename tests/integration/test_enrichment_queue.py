"""process-enrichment-queue's work in this process: triggers, order, transcripts, analyses,
retries until dead, and replay; against the fake Ultravox over HTTP."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import db
from app.drains import Drained
from app.enrichment import queries, service
from app.fakes.ultravox import FakeUltravox, generate_calls
from app.models import Call, EnrichmentItem, EnrichmentType, ProcessingStatus
from app.ultravox import queries as ultravox_queries
from app.ultravox_api.client import UltravoxClient
from tests.conftest import ULTRAVOX_API_KEY
from tests.helpers import make_agency, wait_for
from tests.integration.test_cli import callsync

TRANSCRIPT, ANALYSIS = EnrichmentType.transcript, EnrichmentType.analysis


@pytest.fixture
def agency(session: Session) -> uuid.UUID:
    return make_agency(session)


def ended_calls(fake: FakeUltravox, count: int) -> list[dict[str, Any]]:
    return [call for call in fake.calls if call["ended"] and call["joined"]][:count]


def store_calls(session: Session, agency: uuid.UUID, calls: list[dict[str, Any]]) -> None:
    ultravox_queries.upsert_calls(session, agency, calls)
    session.commit()


def drain(batch_size: int = 200) -> Drained:
    return service.drain_batch(batch_size=batch_size, on_full_batch=lambda: None)


def items(session: Session, *where: Any) -> list[EnrichmentItem]:
    session.expire_all()
    return list(session.scalars(select(EnrichmentItem).where(*where)))


def call_row(session: Session, call: dict[str, Any]) -> Call:
    session.expire_all()
    return session.scalars(
        select(Call).where(Call.ultravox_call_id == uuid.UUID(call["callId"]))
    ).one()


def test_each_trigger_fires_once_per_transition(session: Session, agency: uuid.UUID) -> None:
    live, ended = generate_calls(2, live_every=1)[0], generate_calls(1, live_every=0)[0]
    store_calls(session, agency, [{**live, "callId": ended["callId"], "ended": None}])
    assert items(session) == []  # still live
    store_calls(session, agency, [ended])  # it ends
    store_calls(session, agency, [{**ended, "summary": "edited"}])  # a later change
    store_calls(session, agency, [{**ended, "ended": "2026-02-01T00:00:00Z"}])  # ended again
    assert [item.type for item in items(session)] == [TRANSCRIPT]
    row = call_row(session, ended)
    for _ in range(2):
        session.execute(
            update(Call)
            .where(Call.id == row.id)
            .values(transcript=[], transcript_fetched_at=func.now())
        )
        session.commit()
    assert sorted(item.type for item in items(session)) == [ANALYSIS, TRANSCRIPT]


def test_a_call_stored_already_ended_queues_one_transcript(
    session: Session, agency: uuid.UUID, fake_ultravox: FakeUltravox
) -> None:
    calls = ended_calls(fake_ultravox, 3)
    store_calls(session, agency, calls)
    store_calls(session, agency, calls)
    assert len(items(session, EnrichmentItem.type == TRANSCRIPT)) == 3


def test_claims_follow_priority_then_age(
    session: Session, agency: uuid.UUID, fake_ultravox: FakeUltravox
) -> None:
    store_calls(session, agency, ended_calls(fake_ultravox, 4))
    for item, (priority, ago) in zip(
        items(session), [(100, 40), (10, 10), (50, 30), (10, 20)], strict=True
    ):
        item.priority = priority
        item.created_at = func.now() - timedelta(seconds=ago)
    session.commit()
    claimed = []
    for _ in range(4):
        with db.session_scope() as claiming:
            lease = queries.claim_enrichment_items(claiming, limit=1, lease=timedelta(minutes=5))
        claimed += lease.ids
    by_id = {item.id: item for item in items(session)}
    taken = [(by_id[i].priority, by_id[i].created_at) for i in claimed]
    assert [priority for priority, _ in taken] == [10, 10, 50, 100]
    assert taken == sorted(taken)


def test_a_drain_stores_transcripts_then_analyses(
    session: Session, agency: uuid.UUID, fake_ultravox: FakeUltravox
) -> None:
    calls = ended_calls(fake_ultravox, 5)
    store_calls(session, agency, calls)
    assert drain() == Drained(claimed=5, done={"transcripts": 5, "analyses": 0}, failed=0)
    row = call_row(session, calls[0])
    expected = fake_ultravox.messages(calls[0])
    assert [m["text"] for m in row.transcript or []] == [m["text"] for m in expected]
    assert row.transcript
    assert set(row.transcript[0]) == {
        "role",
        "text",
        "medium",
        "callStageId",
        "callStageMessageIndex",
        "timespan",
    }
    assert row.transcript_fetched_at is not None
    assert len(items(session, EnrichmentItem.type == ANALYSIS)) == 5
    assert drain() == Drained(claimed=5, done={"transcripts": 0, "analyses": 5}, failed=0)
    row = call_row(session, calls[0])
    assert row.analysis
    assert row.analysis["analyzer"] == "rules"
    assert row.analysis["outcome"] != "no_conversation"
    assert row.analyzed_at is not None
    assert {item.status for item in items(session)} == {ProcessingStatus.completed}
    requests = [
        query for _, path, query in fake_ultravox.requests_seen if path.endswith("/messages")
    ]
    assert len(requests) == 5
    assert all(query["mode"] == "in_call" for query in requests)


def test_an_empty_transcript_gets_an_analysis_that_says_so(
    session: Session, agency: uuid.UUID, fake_ultravox: FakeUltravox
) -> None:
    [call] = ended_calls(fake_ultravox, 1)
    fake_ultravox.set_messages(call["callId"], [])
    store_calls(session, agency, [call])
    drain()
    drain()
    row = call_row(session, call)
    assert row.transcript == []
    assert row.analysis is not None
    assert (row.analysis["outcome"], row.analysis["sentiment"]) == ("no_conversation", 0.0)
    assert {item.status for item in items(session)} == {ProcessingStatus.completed}


def test_messages_are_followed_across_pages(fake_ultravox: FakeUltravox) -> None:
    [call] = ended_calls(fake_ultravox, 1)
    many = [
        {"role": "MESSAGE_ROLE_USER", "text": f"line {n}", "callStageMessageIndex": n}
        for n in range(250)
    ]
    fake_ultravox.set_messages(call["callId"], many)
    client = UltravoxClient(fake_ultravox_url(), ULTRAVOX_API_KEY)
    messages = client.list_messages(uuid.UUID(call["callId"]))
    assert [m.text for m in messages] == [f"line {n}" for n in range(250)]
    cursors = [
        q.get("cursor") for _, p, q in fake_ultravox.requests_seen if p.endswith("/messages")
    ]
    assert len(cursors) == 3
    assert cursors[0] is None
    assert None not in cursors[1:]


def fake_ultravox_url() -> str:
    from app.config import get_settings

    return get_settings().ultravox_api_base_url


def test_failures_retry_with_backoff_until_dead_then_replay(
    session: Session, agency: uuid.UUID, fake_ultravox: FakeUltravox
) -> None:
    [call] = ended_calls(fake_ultravox, 1)
    store_calls(session, agency, [call])
    fake_ultravox.inject("503", times=100, endpoint="messages")
    for attempt in (1, 2, 3):
        assert drain().failed == 1
        [item] = items(session)
        assert (item.status, item.attempts) == (ProcessingStatus.failed, attempt)
        assert item.error_message
        assert "HTTP 503" in item.error_message
        if attempt < 3:
            assert item.next_retry_at is not None
            assert item.processing_started_at is not None
            # Backoff: 30 s doubling per attempt, plus up to half again of jitter.
            delay = (item.next_retry_at - item.processing_started_at).total_seconds()
            assert 30 * 2 ** (attempt - 1) <= delay <= 45 * 2 ** (attempt - 1) + 5
            assert drain().claimed == 0  # not due yet
            session.execute(update(EnrichmentItem).values(next_retry_at=func.now()))
            session.commit()
    assert item.next_retry_at is None  # dead
    assert drain().claimed == 0
    fake_ultravox.clear_faults()
    result = callsync("enrichment", "replay", "--call", str(call_row(session, call).id))
    assert result.returncode == 0
    assert "1 dead item(s) queued again" in result.stdout
    drain()  # or the session's worker, if one runs, drains it on the replay's request
    wait_for(lambda: items(session)[0].status == ProcessingStatus.completed, what="the replay")


def test_an_agency_without_a_key_waits_for_it_with_the_reason(
    session: Session, fake_ultravox: FakeUltravox
) -> None:
    """No attempt is counted: the agency's transcripts pause (tests/integration/test_pauses.py)."""
    agency = make_agency(session, api_key=None)
    [call] = ended_calls(fake_ultravox, 1)
    store_calls(session, agency, [call])
    assert drain().failed == 0
    [item] = items(session)
    assert (item.status, item.attempts) == (ProcessingStatus.pending, 0)
    assert item.error_message == "needs_credentials: Agency API key not configured"


def test_a_transcript_the_database_refuses_fails_alone(
    session: Session, agency: uuid.UUID, fake_ultravox: FakeUltravox
) -> None:
    good, bad = ended_calls(fake_ultravox, 2)
    fake_ultravox.set_messages(bad["callId"], [{"role": "MESSAGE_ROLE_USER", "text": "nul \u0000"}])
    store_calls(session, agency, [good, bad])
    assert drain() == Drained(claimed=2, done={"transcripts": 1, "analyses": 0}, failed=1)
    failed = items(session, EnrichmentItem.status == ProcessingStatus.failed)
    assert len(failed) == 1
    assert failed[0].call_id == call_row(session, bad).id
    assert failed[0].error_message
    assert "unsupported Unicode escape sequence" in failed[0].error_message
    assert call_row(session, good).transcript_fetched_at is not None
