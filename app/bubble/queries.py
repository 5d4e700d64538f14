"""SQL for the Bubble sync queue: the two claims (seed 004's processor and retry conditions),
the outcome of an item, and replay. Nothing here commits; the caller owns the transaction."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from app import queue
from app.models import ProcessingStatus, SyncOperation, SyncQueueItem

_earlier = aliased(SyncQueueItem, name="earlier")
# An item is due only when every earlier item of its record is done or dead: a record's
# changes reach Bubble in the order they were queued (seq), an UPDATE after its INSERT.
IN_RECORD_ORDER = ~exists().where(
    _earlier.table_name == SyncQueueItem.table_name,
    _earlier.record_id == SyncQueueItem.record_id,
    _earlier.seq < SyncQueueItem.seq,
    _earlier.status.in_([ProcessingStatus.pending, ProcessingStatus.processing])
    | (
        (_earlier.status == ProcessingStatus.failed) & (_earlier.retry_count < _earlier.max_retries)
    ),
)

# Pending items oldest first inside each table, in fair shares across tables
# (idx_sync_queue_table_pending, then idx_sync_queue_pending): the queue is one Bubble app's,
# with no agency, and a backfill of one table (thousands of listings) would otherwise hold
# back every other table's changes (a signup) behind it. The shares go by lower(table_name),
# the expression that index is on, which idx_sync_queue_record (led by table_name) cannot
# serve with a plan that reads and sorts a table's whole backlog (app.shares). Failed ones
# by next_retry_at (idx_sync_queue_retry; seed 004 retries one without a next_retry_at at
# once). Every claim counts in `tries`, which tells a later try to look for what a lost one
# created.
SYNC_QUEUE = queue.QueueTable(
    SyncQueueItem,
    order_by=[SyncQueueItem.created_at],
    shares_by=func.lower(SyncQueueItem.table_name),
    attempts="retry_count",
    max_attempts="max_retries",
    claims="tries",
    unscheduled_retries=True,
    ready=IN_RECORD_ORDER,
)


def claim_pending(session: Session, *, limit: int, lease: timedelta) -> queue.Lease:
    """bubble-sync-processor: lease up to `limit` items, each only once every earlier item
    of its record is done or dead. It takes items whose lease expired (their worker died; the
    lost run counts as a failure, and an item at its last is dead instead), then pending
    items in fair shares across tables, each table's oldest first. Unlike the seed's
    processor, DELETE items are pushed too. The Lease (ids, processing_started_at) makes them
    ours; see queue.claim. The push task that gets them holds them (`hold`)."""
    kinds = (queue.Due.LOST, queue.Due.SUSPECT, queue.Due.PENDING)
    return queue.claim(session, SYNC_QUEUE, limit=limit, lease=lease, kinds=kinds, hold=False)


def claim_retries(session: Session, *, limit: int) -> queue.Lease:
    """bubble-sync-retry: lease up to `limit` failed items with retries left whose time has
    come (or that have none set), soonest first, each only once every earlier item of its
    record is done or dead. The Lease makes them ours; see queue.claim."""
    kinds = (queue.Due.RETRY,)
    return queue.claim(session, SYNC_QUEUE, limit=limit, lease=None, kinds=kinds, hold=False)


def hold(session: Session, ids: Sequence[uuid.UUID], leased_at: datetime) -> None:
    """The push task holds the items it was given (app.liveness)."""
    queue.hold(session, SYNC_QUEUE, queue.Lease(leased_at, list(ids)))


def claim_next_of_record(session: Session, item: SyncQueueItem) -> queue.Lease:
    """Lease the pending item that follows `item` in its record, if nothing else of the
    record is before it (only the record's first unfinished item can be). In the transaction
    that completed `item`, so the record's next change is pushed at once."""
    return queue.claim(
        session,
        SYNC_QUEUE,
        limit=1,
        lease=None,
        kinds=(queue.Due.PENDING,),
        where=(SyncQueueItem.table_name == item.table_name)
        & (SyncQueueItem.record_id == item.record_id),
        fair=False,  # one record's: nothing to share between tables
    )


def _lease(item: SyncQueueItem) -> queue.Lease:
    return queue.Lease(item.processing_started_at, [item.id])


def get_leased(session: Session, item_id: uuid.UUID, leased_at: datetime) -> SyncQueueItem | None:
    """The item, while the claim made at `leased_at` still holds it."""
    held = queue.ours(SYNC_QUEUE, queue.Lease(leased_at, [item_id]), [item_id])
    return session.scalars(select(SyncQueueItem).where(held)).one_or_none()


def earlier_insert(session: Session, item: SyncQueueItem, type_name: str) -> SyncQueueItem | None:
    """The latest INSERT of the item's record (same table, row id and data type) before it."""
    return session.scalars(
        select(SyncQueueItem)
        .where(
            SyncQueueItem.table_name == item.table_name,
            SyncQueueItem.record_id == item.record_id,
            SyncQueueItem.operation == SyncOperation.INSERT,
            SyncQueueItem.seq < item.seq,
            func.coalesce(SyncQueueItem.payload["_type"].astext, SyncQueueItem.table_name)
            == type_name,
        )
        .order_by(SyncQueueItem.seq.desc())
        .limit(1)
    ).one_or_none()


def record_created(
    session: Session, item: SyncQueueItem, *, bubble_id: str | None, result: dict[str, Any] | None
) -> None:
    """What the item has created in Bubble so far, kept at once for a later try to reuse."""
    session.execute(
        update(SyncQueueItem)
        .where(queue.ours(SYNC_QUEUE, _lease(item), [item.id]))
        .values(bubble_id=bubble_id, result=result)
    )


def mark_done(
    session: Session, item: SyncQueueItem, *, bubble_id: str | None, result: dict[str, Any] | None
) -> None:
    queue.mark_completed(
        session, SYNC_QUEUE, _lease(item), bubble_id=bubble_id, result=result, next_retry_at=None
    )


def release(session: Session, item: SyncQueueItem, reason: str) -> None:
    """Give the item back pending, no try counted: it waits for Bubble's credentials."""
    session.execute(
        update(SyncQueueItem)
        .where(queue.ours(SYNC_QUEUE, _lease(item), [item.id]))
        .values(
            status=ProcessingStatus.pending,
            processing_started_at=None,
            tries=SyncQueueItem.tries - 1,
            error_message=reason,
        )
    )


def mark_failed(
    session: Session, item: SyncQueueItem, error: str, *, base: float, cap: float, dead: bool
) -> bool:
    """Count the failure and record its reason; True when a retry will follow. A `dead` failure
    (one no retry can fix) uses up the item's retries at once."""
    return queue.mark_failed(
        session, SYNC_QUEUE, _lease(item), item.id, error, base=base, cap=cap, dead=dead
    )


def replay_dead(session: Session, *, item_ids: Sequence[uuid.UUID] = ()) -> Counter[str]:
    """Queue dead items (failed max_retries times) again: all of them, or the given ones."""
    where: ColumnElement[bool] | None = SyncQueueItem.id.in_(item_ids) if item_ids else None
    return queue.replay(session, SYNC_QUEUE, where)
