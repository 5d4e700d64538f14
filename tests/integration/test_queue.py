"""The claim/lease core on a real queue table: atomic claims, expired leases, backoff, replay."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from app import db, queue
from app.models import ProcessingStatus, WebhookEvent
from tests.helpers import make_agency

EVENTS = queue.QueueTable(WebhookEvent, order_by=[WebhookEvent.created_at], held=False)
LEASE = timedelta(minutes=5)


def add_events(session: Session, count: int) -> list[uuid.UUID]:
    agency_id = make_agency(session)
    start = datetime.now(UTC) - timedelta(seconds=1)
    rows = [  # a created_at each, so that FIFO order is the order of the ids returned
        {
            "agency_id": agency_id,
            "event_type": "call.ended",
            "payload": {"n": n},
            "created_at": start + timedelta(microseconds=n),
        }
        for n in range(count)
    ]
    ids = list(session.scalars(insert(WebhookEvent).values(rows).returning(WebhookEvent.id)))
    session.commit()
    return ids


def test_sixteen_connections_claim_every_row_exactly_once(session: Session) -> None:
    ids = add_events(session, 2000)
    claimed: list[list[uuid.UUID]] = [[] for _ in range(16)]
    start = threading.Barrier(16)

    def claimer(mine: list[uuid.UUID]) -> None:
        start.wait()
        while True:
            with db.session_scope() as own:
                batch = queue.claim(own, EVENTS, limit=10, lease=LEASE).ids
            if not batch:
                return
            mine.extend(batch)

    threads = [threading.Thread(target=claimer, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [item for mine in claimed for item in mine]
    assert len(everything) == len(set(everything)) == 2000
    assert set(everything) == set(ids)
    assert sum(1 for mine in claimed if mine) > 1  # the claims really were concurrent


def test_an_open_claim_is_skipped_by_another_transaction(session: Session) -> None:
    add_events(session, 20)
    with db.session_scope() as first, db.session_scope() as second:
        a = queue.claim(first, EVENTS, limit=10, lease=LEASE).ids
        b = queue.claim(second, EVENTS, limit=10, lease=LEASE).ids
        assert len(a) == len(b) == 10
        assert not set(a) & set(b)


def test_claims_follow_fifo_order(session: Session) -> None:
    ids = add_events(session, 5)
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == ids[3])
        .values(created_at=func.now() - timedelta(hours=1))
    )
    session.commit()
    with db.session_scope() as own:
        assert queue.claim(own, EVENTS, limit=1, lease=LEASE).ids == [ids[3]]


def backdate_lease(session: Session, item_id: uuid.UUID) -> None:
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == item_id)
        .values(processing_started_at=func.now() - LEASE - timedelta(seconds=1))
    )
    session.commit()


def status_of(session: Session, item: uuid.UUID) -> tuple[ProcessingStatus, int]:
    row = session.get_one(WebhookEvent, item, populate_existing=True)
    return row.status, row.attempts


def test_an_expired_lease_is_claimed_again_alone_and_counts_a_lost_run(session: Session) -> None:
    first, second = add_events(session, 2)
    with db.session_scope() as own:
        assert queue.claim(own, EVENTS, limit=1, lease=LEASE).ids == [first]
    with db.session_scope() as own:
        assert queue.claim(own, EVENTS, limit=10, lease=LEASE).ids == [second]
    backdate_lease(session, first)
    backdate_lease(session, second)
    with db.session_scope() as own:
        taken = queue.claim(own, EVENTS, limit=10, lease=LEASE)
    assert (taken.ids, taken.alone) == ([first], True)
    row = session.get_one(WebhookEvent, first, populate_existing=True)
    assert (row.status, row.attempts, row.lost_runs, row.error_message) == (
        ProcessingStatus.processing,
        0,
        1,
        "worker lost 1 time",
    )


def test_a_row_lost_max_lost_runs_times_is_dead(session: Session) -> None:
    [item] = add_events(session, 1)
    session.execute(update(WebhookEvent).values(lost_runs=2))
    session.commit()
    with db.session_scope() as own:
        queue.claim(own, EVENTS, limit=10, lease=LEASE)
    backdate_lease(session, item)
    with db.session_scope() as own:
        assert queue.claim(own, EVENTS, limit=10, lease=LEASE).ids == []
    row = session.get_one(WebhookEvent, item, populate_existing=True)
    assert (row.status, row.attempts, row.lost_runs, row.error_message) == (
        ProcessingStatus.failed,
        row.max_attempts,
        3,
        "worker lost 3 times",
    )
    with db.session_scope() as own:
        assert queue.replay(own, EVENTS).total() == 1
    row = session.get_one(WebhookEvent, item, populate_existing=True)
    assert (row.status, row.attempts, row.lost_runs) == (ProcessingStatus.pending, 0, 0)


def test_rows_a_dead_worker_was_applying_are_suspects_applied_one_at_a_time(
    session: Session,
) -> None:
    ids = add_events(session, 4)
    with db.session_scope() as own:
        queue.lose(own, EVENTS, ids[1:3])
    for expected in ([ids[1]], [ids[2]]):
        with db.session_scope() as own:
            taken = queue.complete_due(own, EVENTS, limit=10, lease=LEASE)
        assert (taken.ids, taken.alone) == (expected, True)
    with db.session_scope() as own:
        rest = queue.complete_due(own, EVENTS, limit=10, lease=LEASE)
    assert (sorted(rest.ids), rest.alone) == (sorted([ids[0], ids[3]]), False)


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter() -> None:
    rng = random.Random(7)
    delays = [
        queue.backoff_delay(n, base=30, cap=3600, rng=rng).total_seconds() for n in range(1, 10)
    ]
    for attempt, delay in enumerate(delays, start=1):
        floor = min(3600, 30 * 2 ** (attempt - 1))
        assert floor <= delay <= floor * 1.5
    assert len(set(delays)) == len(delays)


def test_failures_back_off_until_dead_then_replay_revives(session: Session) -> None:
    [item] = add_events(session, 1)
    for attempt in range(1, 6):
        with db.session_scope() as own:
            claimed = queue.claim(own, EVENTS, limit=1, lease=LEASE)
            assert claimed.ids == [item]
            retried = queue.mark_failed(own, EVENTS, claimed, item, "boom", base=30, cap=3600)
        assert retried is (attempt < 5)
        row = session.get_one(WebhookEvent, item, populate_existing=True)
        assert row.attempts == attempt
        if retried:
            assert row.next_retry_at is not None
            with db.session_scope() as own:  # not due yet
                assert queue.claim(own, EVENTS, limit=1, lease=LEASE).ids == []
            session.execute(update(WebhookEvent).values(next_retry_at=func.now()))
            session.commit()
    with db.session_scope() as own:
        assert queue.claim(own, EVENTS, limit=1, lease=LEASE).ids == []  # dead
        assert queue.replay(own, EVENTS).total() == 1
    with db.session_scope() as own:
        claimed = queue.claim(own, EVENTS, limit=1, lease=LEASE)
        assert claimed.ids == [item]
        assert len(queue.mark_completed(own, EVENTS, claimed)) == 1
    status = session.scalar(select(WebhookEvent.status).where(WebhookEvent.id == item))
    assert status == ProcessingStatus.completed


def test_completing_a_row_that_is_not_leased_changes_nothing(session: Session) -> None:
    [item] = add_events(session, 1)
    with db.session_scope() as own:
        never = queue.Lease(leased_at=None, ids=[item])
        assert queue.mark_completed(own, EVENTS, never) == []  # pending, never claimed


def test_a_worker_whose_lease_was_taken_over_changes_nothing(session: Session) -> None:
    [item] = add_events(session, 1)
    with db.session_scope() as own:
        first = queue.claim(own, EVENTS, limit=1, lease=LEASE)
    backdate_lease(session, item)
    with db.session_scope() as own:
        second = queue.claim(own, EVENTS, limit=1, lease=LEASE)
    assert first.ids == second.ids == [item]
    with db.session_scope() as own:  # the first worker wakes up late
        assert queue.mark_completed(own, EVENTS, first) == []
        assert queue.mark_failed(own, EVENTS, first, item, "late", base=30, cap=3600) is False
    with db.session_scope() as own:
        assert len(queue.mark_completed(own, EVENTS, second)) == 1
    assert status_of(session, item) == (ProcessingStatus.completed, 0)


def test_rows_completed_in_a_transaction_that_rolls_back_are_due_again(session: Session) -> None:
    ids = add_events(session, 3)
    with db.get_sessionmaker()() as first, db.session_scope() as second:
        taken = queue.complete_due(first, EVENTS, limit=2, lease=LEASE).ids
        assert sorted(taken) == sorted(ids[:2])  # the oldest two; RETURNING has no order
        # While the first transaction holds them, another takes only the rest.
        assert queue.complete_due(second, EVENTS, limit=10, lease=LEASE).ids == ids[2:]
        first.rollback()  # the work failed, or its worker died
    assert status_of(session, ids[0]) == (ProcessingStatus.pending, 0)
    with db.session_scope() as own:
        assert sorted(queue.complete_due(own, EVENTS, limit=10, lease=LEASE).ids) == sorted(ids[:2])
    assert status_of(session, ids[0]) == (ProcessingStatus.completed, 0)


def test_a_failure_of_work_that_rolled_back_is_recorded_unless_another_holds_the_row(
    session: Session,
) -> None:
    free, held = add_events(session, 2)
    fail_due = partial(queue.fail_due, lease=LEASE, base=30, cap=3600)
    with db.session_scope() as own, db.session_scope() as other:
        assert queue.complete_due(
            other, EVENTS, limit=1, lease=LEASE, where=WebhookEvent.id == held
        ).ids
        assert fail_due(own, EVENTS, free, "boom") is True
        assert fail_due(own, EVENTS, held, "boom") is False  # skipped, locked
    assert status_of(session, free) == (ProcessingStatus.failed, 1)
    assert status_of(session, held) == (ProcessingStatus.completed, 0)
    with db.session_scope() as own:  # completed meanwhile: no longer due, left alone
        assert fail_due(own, EVENTS, held, "late") is False
