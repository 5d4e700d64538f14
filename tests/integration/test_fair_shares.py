"""Fair shares on real PostgreSQL: one agency's backlog (or one table's, in sync_queue) does not
starve another's new work in any claim, and each agency's rows keep their queue's order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app import db, queue
from app.bubble import queries as bubble
from app.config import get_settings
from app.enrichment import queries as enrichment
from app.models import Call, EnrichmentItem, SyncQueueItem, WebhookEvent
from app.webhooks import queries as webhooks
from app.webhooks import service as webhook_service
from tests.helpers import make_agency

LEASE = timedelta(minutes=5)
BACKLOG = 1000


@pytest.fixture
def fifo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """FAIR_SHARES=false: claims oldest first over every agency, as before."""
    monkeypatch.setenv("FAIR_SHARES", "false")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def add_events(session: Session, agency: uuid.UUID, count: int, *, minutes_ago: int) -> None:
    """`count` pending events of the agency, one a millisecond from `minutes_ago` on."""
    session.execute(
        text(
            "INSERT INTO webhook_queue (agency_id, event_type, payload, created_at) "
            "SELECT :agency, 'call.started', "
            "       jsonb_build_object('event', 'call.started', 'call', "
            "                          jsonb_build_object('callId', gen_random_uuid()::text)), "
            "       now() - make_interval(mins => :ago) + n * interval '1 millisecond' "
            "FROM generate_series(1, :count) AS n"
        ),
        {"agency": agency, "count": count, "ago": minutes_ago},
    )
    session.commit()


def add_ended_calls(session: Session, agency: uuid.UUID, count: int) -> None:
    """`count` ended calls of the agency: the trigger queues a transcript for each."""
    session.execute(
        text(
            "INSERT INTO calls (agency_id, ultravox_call_id, raw, ended) "
            "SELECT :agency, gen_random_uuid(), '{}', now() FROM generate_series(1, :count)"
        ),
        {"agency": agency, "count": count},
    )
    session.commit()


def agency_of(session: Session, model: Any, ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    rows = session.execute(select(model.id, model.agency_id).where(model.id.in_(ids)))
    return dict(rows.all())


def oldest(session: Session, model: Any, agency: uuid.UUID, count: int, *order: Any) -> list[Any]:
    stmt = select(model.id).where(model.agency_id == agency).order_by(*order).limit(count)
    return list(session.scalars(stmt))


@pytest.fixture
def two_agencies(session: Session) -> tuple[uuid.UUID, uuid.UUID]:
    return make_agency(session, name="A: backlog"), make_agency(session, name="B: new work")


def test_a_webhook_backlog_does_not_hold_back_another_agencys_events(
    session: Session, two_agencies: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = two_agencies
    add_events(session, a, BACKLOG, minutes_ago=10)
    add_events(session, b, 5, minutes_ago=1)
    with db.session_scope() as claiming:
        taken = webhooks.take_due_events(claiming, limit=200, lease=LEASE).ids
    owners = agency_of(session, WebhookEvent, taken)
    assert len(taken) == 200  # B's 5, and A fills the rest
    assert sum(owner == b for owner in owners.values()) == 5
    a_taken = {event for event, owner in owners.items() if owner == a}
    assert a_taken == set(oldest(session, WebhookEvent, a, 195, WebhookEvent.created_at))


def test_fifo_takes_the_backlog_first(
    session: Session, two_agencies: tuple[uuid.UUID, uuid.UUID], fifo: None
) -> None:
    a, b = two_agencies
    add_events(session, a, BACKLOG, minutes_ago=10)
    add_events(session, b, 5, minutes_ago=1)
    with db.session_scope() as claiming:
        taken = webhooks.take_due_events(claiming, limit=200, lease=LEASE).ids
    assert set(agency_of(session, WebhookEvent, taken).values()) == {a}


def test_a_drain_applies_the_new_agencys_events_in_its_first_batch(
    session: Session, two_agencies: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = two_agencies
    add_events(session, a, BACKLOG, minutes_ago=10)
    add_events(session, b, 3, minutes_ago=1)
    webhook_service.drain_batch(batch_size=200, on_full_batch=lambda: None)
    calls = session.scalars(select(Call.agency_id)).all()
    assert calls.count(b) == 3
    assert calls.count(a) == 197


def test_each_agency_keeps_fifo_order_across_claims(session: Session) -> None:
    agencies = [make_agency(session, name=f"agency {n}") for n in range(3)]
    for n, agency in enumerate(agencies):
        add_events(session, agency, 40, minutes_ago=10 - n)
    taken: dict[uuid.UUID, list[uuid.UUID]] = {agency: [] for agency in agencies}
    for _ in range(10):
        with db.session_scope() as claiming:
            batch = webhooks.take_due_events(claiming, limit=12, lease=LEASE).ids
        rows = session.execute(
            select(WebhookEvent.id, WebhookEvent.agency_id)
            .where(WebhookEvent.id.in_(batch))
            .order_by(WebhookEvent.created_at)
        ).all()
        for agency in agencies:
            mine = [event for event, owner in rows if owner == agency]
            assert len(mine) == 4  # a share each
            taken[agency] += mine
    for agency in agencies:
        assert taken[agency] == oldest(session, WebhookEvent, agency, 40, WebhookEvent.created_at)


def test_more_agencies_than_rows_to_take_get_one_each(session: Session) -> None:
    agencies = [make_agency(session, name=f"agency {n}") for n in range(30)]
    for agency in agencies:
        add_events(session, agency, 5, minutes_ago=10)
    seen: set[uuid.UUID] = set()
    for _ in range(3):
        with db.session_scope() as claiming:
            batch = webhooks.take_due_events(claiming, limit=10, lease=LEASE).ids
        owners = agency_of(session, WebhookEvent, batch)
        assert len(batch) == 10
        assert len(set(owners.values())) == 10  # one each
        seen |= set(owners.values())
    assert len(seen) > 10  # the agencies served change from claim to claim


def test_concurrent_fair_claims_take_disjoint_rows(
    session: Session, two_agencies: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = two_agencies
    add_events(session, a, BACKLOG, minutes_ago=10)
    add_events(session, b, 10, minutes_ago=1)
    with db.session_scope() as first, db.session_scope() as second:
        one = webhooks.take_due_events(first, limit=100, lease=LEASE).ids
        two = webhooks.take_due_events(second, limit=100, lease=LEASE).ids
        assert len(one) == len(two) == 100
        assert not set(one) & set(two)
        owners = agency_of(session, WebhookEvent, one + two)
        assert sum(owner == b for owner in owners.values()) == 10  # B's all, between them


def test_an_enrichment_backlog_does_not_hold_back_another_agencys_transcripts(
    session: Session, two_agencies: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = two_agencies
    add_ended_calls(session, a, BACKLOG)
    # A's items in an order of their own: priority first, then age.
    session.execute(
        text(
            "UPDATE enrichment_queue AS q SET priority = 10 + (r.n % 4) * 30, "
            "created_at = now() - r.n * interval '1 second' "
            "FROM (SELECT id, row_number() OVER (ORDER BY md5(id::text)) AS n "
            "      FROM enrichment_queue) AS r "
            "WHERE q.id = r.id"
        )
    )
    session.commit()
    add_ended_calls(session, b, 3)
    with db.session_scope() as claiming:
        lease = enrichment.claim_enrichment_items(claiming, limit=200, lease=LEASE)
    owners = agency_of(session, EnrichmentItem, lease.ids)
    assert len(lease.ids) == 200
    assert sum(owner == b for owner in owners.values()) == 3
    order = (EnrichmentItem.priority, EnrichmentItem.created_at)
    a_taken = {item for item, owner in owners.items() if owner == a}
    assert a_taken == set(oldest(session, EnrichmentItem, a, 197, *order))


def test_a_sync_queue_backfill_of_one_table_does_not_hold_back_another_table(
    session: Session,
) -> None:
    session.execute(
        text(
            "INSERT INTO sync_queue (table_name, record_id, operation, created_at) "
            "SELECT 'listing', n::text, 'INSERT', now() - interval '1 hour' + n * interval '1 ms' "
            "FROM generate_series(1, :count) AS n"
        ),
        {"count": BACKLOG},
    )
    session.execute(
        text(
            "INSERT INTO sync_queue (table_name, record_id, operation) "
            "VALUES ('user', 'u1', 'SIGNUP_ATOMIC'), ('user', 'u2', 'SIGNUP_ATOMIC')"
        )
    )
    session.commit()
    with db.session_scope() as claiming:
        lease = bubble.claim_pending(claiming, limit=10, lease=LEASE)
    rows = session.execute(
        select(SyncQueueItem.table_name, SyncQueueItem.record_id)
        .where(SyncQueueItem.id.in_(lease.ids))
        .order_by(SyncQueueItem.created_at, SyncQueueItem.seq)
    ).all()
    assert [record for table, record in rows if table == "user"] == ["u1", "u2"]
    assert [record for table, record in rows if table == "listing"] == [str(n) for n in range(1, 9)]


def test_a_queue_without_shares_stays_fifo(
    session: Session, two_agencies: tuple[uuid.UUID, uuid.UUID]
) -> None:
    a, b = two_agencies
    add_events(session, a, 50, minutes_ago=10)
    add_events(session, b, 5, minutes_ago=1)
    plain = queue.QueueTable(WebhookEvent, order_by=[WebhookEvent.created_at], held=False)
    with db.session_scope() as claiming:
        taken = queue.claim(claiming, plain, limit=20, lease=LEASE).ids
    assert set(agency_of(session, WebhookEvent, taken).values()) == {a}
