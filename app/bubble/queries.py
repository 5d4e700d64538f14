"""SQL for the Bubble sync queue: the two claims (seed 004's processor and retry conditions),
and the outcome of an item. Nothing here commits; the caller owns the transaction."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, func, select, text, update
from sqlalchemy.orm import Session

from app import metrics, queue
from app.models import ProcessingStatus, SyncOperation, SyncQueueItem

# An item is due only when every earlier item of its record is done or dead: a record's
# changes reach Bubble in the order they were queued (seq), an UPDATE after its INSERT.
_CLAIM = """
    UPDATE sync_queue SET status = 'processing', processing_started_at = now(),
                          tries = tries + 1
    WHERE id IN (
        SELECT id FROM sync_queue item WHERE ({due}) AND NOT EXISTS (
            SELECT 1 FROM sync_queue earlier
            WHERE earlier.table_name = item.table_name AND earlier.record_id = item.record_id
              AND earlier.seq < item.seq
              AND (earlier.status IN ('pending', 'processing')
                   OR (earlier.status = 'failed' AND earlier.retry_count < earlier.max_retries))
        )
        ORDER BY {order} LIMIT :limit FOR UPDATE SKIP LOCKED
    )
    RETURNING id, processing_started_at
"""
# bubble-sync-processor: pending items, oldest first, and items whose worker stopped (their
# lease expired). Unlike the seed's processor, DELETE items are pushed too.
CLAIM_PENDING = text(_CLAIM.format(
    due="status = 'pending'"
        " OR (status = 'processing' AND processing_started_at < now() - :lease)",
    order="created_at",
))  # fmt: skip
# bubble-sync-retry: failed items with retries left whose time has come.
CLAIM_RETRIES = text(_CLAIM.format(
    due="status = 'failed' AND retry_count < max_retries"
        " AND (next_retry_at IS NULL OR next_retry_at <= now())",
    order="next_retry_at NULLS FIRST",
))  # fmt: skip


# The record's next change, right after one of its items is done (in the same transaction).
CLAIM_NEXT_OF_RECORD = text(
    _CLAIM.format(
        due="status = 'pending' AND table_name = :table_name AND record_id = :record_id",
        order="seq",
    )
)


def claim_pending(session: Session, *, limit: int, lease: timedelta) -> list[Row[Any]]:
    with metrics.timed_claim("sync_queue"):
        return list(session.execute(CLAIM_PENDING, {"limit": limit, "lease": lease}))


def claim_retries(session: Session, *, limit: int) -> list[Row[Any]]:
    with metrics.timed_claim("sync_queue"):
        return list(session.execute(CLAIM_RETRIES, {"limit": limit}))


def claim_next_of_record(session: Session, item: SyncQueueItem) -> Row[Any] | None:
    """The pending item that follows `item`'s record, if nothing else is before it."""
    params = {"table_name": item.table_name, "record_id": item.record_id, "limit": 1}
    return session.execute(CLAIM_NEXT_OF_RECORD, params).one_or_none()


def _ours(item_id: uuid.UUID, leased_at: datetime | None) -> ColumnElement[bool]:
    """The item, while the claim made at `leased_at` still holds it."""
    return (
        (SyncQueueItem.id == item_id)
        & (SyncQueueItem.status == ProcessingStatus.processing)
        & (SyncQueueItem.processing_started_at == leased_at)
    )


def get_leased(session: Session, item_id: uuid.UUID, leased_at: datetime) -> SyncQueueItem | None:
    return session.scalars(select(SyncQueueItem).where(_ours(item_id, leased_at))).one_or_none()


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
        .where(_ours(item.id, item.processing_started_at))
        .values(bubble_id=bubble_id, result=result)
    )


def mark_done(
    session: Session, item: SyncQueueItem, *, bubble_id: str | None, result: dict[str, Any] | None
) -> None:
    session.execute(
        update(SyncQueueItem)
        .where(_ours(item.id, item.processing_started_at))
        .values(status=ProcessingStatus.completed, processed_at=func.now(), bubble_id=bubble_id,
                result=result, error_message=None, next_retry_at=None)
    )  # fmt: skip


def release(session: Session, item: SyncQueueItem, reason: str) -> None:
    """Give the item back pending, no try counted: it waits for Bubble's credentials."""
    session.execute(
        update(SyncQueueItem)
        .where(_ours(item.id, item.processing_started_at))
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
    failures = max(item.retry_count + 1, item.max_retries if dead else 0)
    retry = failures < item.max_retries
    delay = queue.backoff_delay(failures, base=base, cap=cap)
    session.execute(
        update(SyncQueueItem)
        .where(_ours(item.id, item.processing_started_at))
        .values(status=ProcessingStatus.failed, retry_count=failures, error_message=error,
                next_retry_at=func.now() + delay if retry else None)
    )  # fmt: skip
    return retry
