"""The seeds' SQL surface on real PostgreSQL: the upsert RPC, the triggers, the key functions."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import crypto
from app.fakes.ultravox import generate_calls
from app.models import Call, EnrichmentItem, EnrichmentType
from app.ultravox import queries
from tests.helpers import make_agency


def queued(session: Session) -> list[tuple[str, EnrichmentType]]:
    rows = session.execute(
        select(Call.ultravox_call_id, EnrichmentItem.type).join(Call).order_by(Call.created)
    )
    return [(str(call_id), kind) for call_id, kind in rows]


def test_a_page_upsert_stores_each_call_once_and_queues_transcripts_for_ended_ones(
    session: Session,
) -> None:
    agency = make_agency(session)
    calls = generate_calls(20, live_every=4)
    page = [*calls, calls[0]]  # a call repeated within one page is stored once
    assert queries.upsert_calls(session, agency, page) == 20
    assert queries.upsert_calls(session, agency, calls) == 0  # unchanged: nothing to do
    session.commit()
    ended = [call["callId"] for call in calls if call["ended"] is not None]
    assert len(ended) == 15
    assert queued(session) == [(call_id, EnrichmentType.transcript) for call_id in ended]
    stored = session.scalars(select(Call).where(Call.ultravox_call_id == calls[0]["callId"])).one()
    assert stored.raw == calls[0]
    assert stored.ended is not None
    assert stored.end_reason == calls[0]["endReason"]


def test_whole_pages_are_upserted_without_their_live_calls(session: Session) -> None:
    agency = make_agency(session)
    calls = generate_calls(6, live_every=0)
    calls[1]["ended"] = None  # live, as the API sends it
    del calls[2]["ended"]  # live, the field left out
    pages = [
        json.dumps({"next": None, "results": calls[:3]}).encode(),
        json.dumps({"next": None, "results": calls[3:], "total": 6}).encode(),
    ]
    assert queries.upsert_ended_calls(session, agency, pages) == 4
    assert queries.upsert_ended_calls(session, agency, pages) == 0  # stored already
    stored = set(map(str, session.scalars(select(Call.ultravox_call_id))))
    assert stored == {calls[i]["callId"] for i in (0, 3, 4, 5)}


def test_a_call_that_ends_later_queues_its_transcript_once(session: Session) -> None:
    agency = make_agency(session)
    live = generate_calls(4, live_every=4)[3]
    queries.upsert_calls(session, agency, [live])
    assert queued(session) == []
    ended = {**live, "ended": "2026-01-01T01:00:00Z", "endReason": "hangup"}
    queries.upsert_calls(session, agency, [ended])
    queries.upsert_calls(session, agency, [{**ended, "summary": "changed"}])
    session.commit()
    assert queued(session) == [(live["callId"], EnrichmentType.transcript)]


def test_a_fetched_transcript_queues_the_analysis(session: Session) -> None:
    agency = make_agency(session)
    queries.upsert_calls(session, agency, generate_calls(2, live_every=0))
    session.execute(update(Call).values(transcript=[], transcript_fetched_at=func.now()))
    session.execute(update(Call).values(transcript_fetched_at=func.now()))  # not first: no item
    session.commit()
    kinds = sorted(kind for _, kind in queued(session))
    assert kinds == [EnrichmentType.analysis] * 2 + [EnrichmentType.transcript] * 2


def test_keys_are_encrypted_at_rest_and_decrypt_only_with_the_key(session: Session) -> None:
    ciphertext = crypto.encrypt(session, "uv-secret")
    assert b"uv-secret" not in ciphertext
    assert crypto.decrypt(session, ciphertext) == "uv-secret"
    with pytest.raises(DBAPIError, match="Wrong key or corrupt data"):
        session.execute(text("SELECT decrypt_api_key(:c, 'not-the-key')"), {"c": ciphertext})


def test_progress_and_claim_rpcs_keep_exact_counts(session: Session) -> None:
    agency = make_agency(session)
    job_id = session.scalar(
        text(
            "INSERT INTO historical_sync_jobs (agency_id, date_to) VALUES (:a, now()) RETURNING id"
        ),
        {"a": agency},
    )
    session.commit()
    [claimed] = queries.claim_sync_jobs(session, limit=3, lease_seconds=300)
    assert claimed.id == job_id
    assert queries.claim_sync_jobs(session, limit=3, lease_seconds=300) == []  # leased
    for cursor in ("c1", "c2"):
        totals = queries.update_sync_job_progress(
            session,
            job_id,
            cursor=cursor,
            processed=50,
            imported=40,
            skipped=10,
            failed=0,
            total=120,
        )
    assert (totals.processed_calls, totals.imported_calls, totals.total_calls) == (100, 80, 120)
    queries.complete_sync_job(session, job_id)
    queries.fail_sync_job(session, job_id, "too late")  # a finished job stays finished
    row = session.execute(
        text("SELECT status, cursor, error_message FROM historical_sync_jobs WHERE id = :id"),
        {"id": job_id},
    ).one()
    assert tuple(row) == ("completed", "c2", None)
