"""Claims held by live workers, taken over when their worker is gone, and the rescue that
buries dead workers (app.liveness, app.rescue, app.queue)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from app import db, queue, rescue
from app.bubble.queries import SYNC_QUEUE
from app.campaigns import queries as campaign_queries
from app.config import get_settings
from app.fakes.salesforce import FakeSalesforce
from app.models import (
    CampaignDial,
    DialStatus,
    Integration,
    ProcessingStatus,
    SyncQueueItem,
    WebhookEvent,
    WorkerProcess,
)
from app.salesforce import queries as salesforce_queries
from tests.campaigns import enroll, make_campaign
from tests.helpers import make_agency
from tests.integration.test_campaign_orchestrator import NOON_ISH
from tests.salesforce import connect

EVENTS = queue.QueueTable(WebhookEvent, order_by=[WebhookEvent.created_at], held=False)
LEASE = timedelta(minutes=5)


@pytest.fixture(autouse=True)
def _no_workers(session: Session) -> Iterator[None]:
    """The rows these tests make stand for no process: none outlives its test."""
    yield
    session.rollback()
    session.execute(delete(WorkerProcess))
    session.commit()


def add_worker(
    session: Session, worker_id: str, *, seconds_ago: float = 0, boot: str = "a"
) -> None:
    node = worker_id.split(":")[0]
    session.execute(
        insert(WorkerProcess).values(
            id=worker_id,
            node=node,
            boot=boot,
            pid=int(worker_id.split(":")[1]),
            heartbeat_at=text(f"now() - interval '{seconds_ago} seconds'"),
        )
    )
    session.commit()


def add_events(session: Session, count: int) -> list[uuid.UUID]:
    agency = make_agency(session)
    rows = [
        {"agency_id": agency, "event_type": "call.ended", "payload": {"n": n}} for n in range(count)
    ]
    ids = list(session.scalars(insert(WebhookEvent).values(rows).returning(WebhookEvent.id)))
    session.commit()
    return ids


def test_a_claim_held_by_a_live_worker_is_never_taken_over_however_old(
    session: Session,
) -> None:
    add_worker(session, "sync@host:100")
    item = session.scalars(
        insert(SyncQueueItem)
        .values(table_name="users", record_id="1", operation="INSERT", payload={})
        .returning(SyncQueueItem.id)
    ).one()
    session.execute(
        update(SyncQueueItem).values(
            status=ProcessingStatus.processing,
            worker_id="sync@host:100",
            processing_started_at=text("now() - interval '1 day'"),
        )
    )
    session.commit()
    with db.session_scope() as own:
        assert queue.claim(own, SYNC_QUEUE, limit=10, lease=LEASE).ids == []
    session.execute(text("DELETE FROM workers"))
    session.commit()
    with db.session_scope() as own:  # its worker is gone: taken at once, alone
        taken = queue.claim(own, SYNC_QUEUE, limit=10, lease=LEASE)
    assert (taken.ids, taken.alone) == ([item], True)
    row = session.get_one(SyncQueueItem, item, populate_existing=True)
    assert (row.lost_runs, row.retry_count, row.error_message) == (1, 0, "worker lost 1 time")


def test_reap_buries_only_workers_past_their_time_and_counts_what_they_were_applying(
    session: Session,
) -> None:
    ids = add_events(session, 3)
    dead_after = get_settings().worker_dead_after_seconds
    add_worker(session, "webhooks@host:1", seconds_ago=dead_after + 5)
    add_worker(session, "webhooks@host:2", seconds_ago=1)
    session.execute(
        update(WorkerProcess).where(WorkerProcess.id == "webhooks@host:1").values(applying=ids[:2])
    )
    session.commit()
    sent: list[str] = []

    def send(entry: str, **_: object) -> None:
        sent.append(entry)

    assert rescue.reap(get_settings(), send) == ["webhooks@host:1"]
    assert sent == list(rescue.RESCUE_TICKS)
    assert session.scalars(select(WorkerProcess.id)).all() == ["webhooks@host:2"]
    lost = {
        row.id: (row.status, row.lost_runs, row.error_message)
        for row in session.execute(select(WebhookEvent)).scalars()
    }
    assert lost == {
        ids[0]: (ProcessingStatus.pending, 1, "worker lost 1 time"),
        ids[1]: (ProcessingStatus.pending, 1, "worker lost 1 time"),
        ids[2]: (ProcessingStatus.pending, 0, None),
    }
    assert rescue.reap(get_settings(), send) == []  # nothing more: no second rescue
    assert len(sent) == len(rescue.RESCUE_TICKS)


def test_a_restarted_node_buries_its_predecessors_at_once(session: Session) -> None:
    add_worker(session, "sync@host:10", boot="old")
    add_worker(session, "sync@host:11", boot="new")
    add_worker(session, "webhooks@host:12", boot="old")
    sent: list[tuple[str, dict[str, object]]] = []

    def send(entry: str, **kwargs: object) -> None:
        sent.append((entry, kwargs))

    assert rescue.bury_predecessors("sync@host", "new", send) == ["sync@host:10"]
    assert sorted(session.scalars(select(WorkerProcess.id))) == [
        "sync@host:11",
        "webhooks@host:12",
    ]
    assert sent == list(rescue.RESCUE_TICKS.items())


def test_an_event_lost_three_times_is_dead_and_the_rest_of_its_batch_is_applied(
    session: Session,
) -> None:
    ids = add_events(session, 3)
    for _ in range(3):
        with db.session_scope() as own:
            queue.lose(own, EVENTS, [ids[0]])
    with db.session_scope() as own:
        queue.lose(own, EVENTS, ids[1:])
    row = session.get_one(WebhookEvent, ids[0], populate_existing=True)
    assert (row.status, row.attempts, row.error_message) == (
        ProcessingStatus.failed,
        row.max_attempts,
        "worker lost 3 times",
    )
    taken = []
    while True:
        with db.session_scope() as own:
            claimed = queue.complete_due(own, EVENTS, limit=10, lease=LEASE)
        if not claimed.ids:
            break
        assert claimed.alone  # suspects, one at a time
        taken += claimed.ids
    assert sorted(taken) == sorted(ids[1:])


def test_a_dial_reserved_by_a_worker_that_is_gone_ends_unknown_at_the_next_run(
    session: Session,
) -> None:
    campaign = make_campaign(session)
    alive, gone = enroll(session, campaign), enroll(session, campaign)
    add_worker(session, "campaigns@host:7")
    with db.session_scope() as own:
        campaign_queries.reserve_dials(own, campaign.id, limit=10, now=NOON_ISH)
    session.execute(update(CampaignDial).values(worker_id="campaigns@host:7"))
    session.execute(
        update(CampaignDial)
        .where(CampaignDial.lead_id == gone.id)
        .values(worker_id="campaigns@host:8")
    )
    session.commit()
    with db.session_scope() as own:  # long before any DIAL_LEASE_SECONDS is over
        freed = campaign_queries.expire_reservations(
            own, campaign.id, before=NOON_ISH - timedelta(days=1), error="worker gone"
        )
    assert freed == 1
    status = {d.lead_id: d.status for d in session.scalars(select(CampaignDial))}
    assert status == {alive.id: DialStatus.reserved, gone.id: DialStatus.unknown}


def test_a_salesforce_run_is_held_while_its_worker_lives(
    session: Session, fake_salesforce: FakeSalesforce
) -> None:
    integration = connect(session, fake_salesforce)
    add_worker(session, "sync@host:9")
    session.execute(
        update(Integration).values(
            sync_started_at=text("now() - interval '1 day'"), sync_worker_id="sync@host:9"
        )
    )
    session.commit()
    with db.session_scope() as own:
        assert salesforce_queries.start_run(own, integration, lease=LEASE) is None
    session.execute(delete(WorkerProcess))
    session.commit()
    with db.session_scope() as own:
        assert salesforce_queries.start_run(own, integration, lease=LEASE) is not None
