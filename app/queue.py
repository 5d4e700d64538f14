"""The claim/lease core that every queue table uses.

A queue row is `pending`, `processing` (leased to a worker since processing_started_at),
`completed`, or `failed`. A failed row is retried when next_retry_at is due while
attempts < max_attempts; a failed row with attempts = max_attempts is dead until replayed.

Every claim is one statement, `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING`, so two workers never hold the same row. The claim's processing_started_at is its
lease: completing or failing a row checks it, so a worker whose lease expired and was taken
over changes nothing. A `processing` row whose lease expired
belonged to a worker that died: the claim counts that run as a failed attempt and takes the
row again, or buries it as dead when that was its last attempt.

Work that is all done in the database needs no lease: `complete_due` takes due rows as
completed in the caller's transaction, and the same transaction does the work. Its row locks
keep other workers off until it commits; if it rolls back, or its worker dies, the rows are
due again as they were.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Update,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from app import metrics
from app.models import ProcessingStatus

LEASE_EXPIRED = "lease expired: the worker stopped before finishing"


@dataclass(frozen=True)
class Lease:
    """Rows claimed together, and the processing_started_at that proves they are still ours."""

    leased_at: datetime | None
    ids: list[uuid.UUID]


@dataclass(frozen=True)
class QueueTable:
    """How one table spells the queue columns, and the order its seed's index claims in."""

    model: Any
    order_by: Sequence[InstrumentedAttribute[Any]]

    @property
    def columns(self) -> Any:
        return self.model.__table__.c


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> timedelta:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, then +0..50% at random."""
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    jitter = (rng or random).uniform(0, delay / 2)
    return timedelta(seconds=delay + jitter)


def claim(
    session: Session,
    queue: QueueTable,
    *,
    limit: int,
    lease: timedelta,
    where: ColumnElement[bool] | None = None,
) -> Lease:
    """Lease up to `limit` due rows in the queue's index order.

    Due means pending, failed with a retry due, or processing with an expired lease.
    """
    c = queue.columns
    status = ProcessingStatus
    picked = _due(queue, limit=limit, lease=lease, where=where)
    # A lost run counts as an attempt; on the last one the row is dead rather than re-run.
    lost = c.status == status.processing
    last_try = and_(lost, c.attempts + 1 >= c.max_attempts)
    stmt = (
        update(queue.model)
        .where(c.id.in_(picked))
        .values(
            status=case(
                (last_try, cast(status.failed.value, c.status.type)),
                else_=cast(status.processing.value, c.status.type),
            ),
            attempts=case((lost, c.attempts + 1), else_=c.attempts),
            error_message=case((lost, LEASE_EXPIRED), else_=c.error_message),
            processing_started_at=func.now(),
            next_retry_at=case((last_try, None), else_=c.next_retry_at),
        )
        .returning(c.id, c.status, c.processing_started_at)
    )
    with metrics.timed_claim(queue.model.__tablename__):
        rows = [row for row in session.execute(stmt) if row.status == status.processing]
    # now() is the transaction's start, so every row of one claim has the same lease.
    return Lease(rows[0].processing_started_at if rows else None, [row.id for row in rows])


def complete_due(
    session: Session,
    queue: QueueTable,
    *,
    limit: int,
    lease: timedelta,
    where: ColumnElement[bool] | None = None,
) -> list[uuid.UUID]:
    """Mark up to `limit` due rows completed, in the queue's order, for work done in the
    caller's transaction; returns their ids."""
    c = queue.columns
    stmt = (
        update(queue.model)
        .where(c.id.in_(_due(queue, limit=limit, lease=lease, where=where)))
        .values(status=ProcessingStatus.completed, processed_at=func.now(), error_message=None)
        .returning(c.id)
    )
    with metrics.timed_claim(queue.model.__tablename__):
        return list(session.scalars(stmt))


def _due_kinds(
    queue: QueueTable, lease: timedelta
) -> list[tuple[ColumnElement[bool], Sequence[Any]]]:
    """Each kind of due row with the order it is taken in: runs whose lease expired, retries
    that came due, then pending rows in the queue's order."""
    c = queue.columns
    status = ProcessingStatus
    return [
        ((c.status == status.processing) & (c.processing_started_at < func.now() - lease),
         [c.processing_started_at]),
        ((c.status == status.failed) & (c.attempts < c.max_attempts)
         & (c.next_retry_at <= func.now()), [c.next_retry_at]),
        (c.status == status.pending, queue.order_by),
    ]  # fmt: skip


def count_due(session: Session, queue: QueueTable, *, lease: timedelta) -> int:
    """How many rows a claim could take now."""
    due = or_(*(kind for kind, _ in _due_kinds(queue, lease)))
    return session.scalar(select(func.count()).select_from(queue.model).where(due)) or 0


def _due(
    queue: QueueTable, *, limit: int, lease: timedelta, where: ColumnElement[bool] | None
) -> Select[tuple[uuid.UUID]]:
    """Ids of up to `limit` due rows, locked, kind by kind (_due_kinds). Each kind is its own
    locked, limited scan, so each can follow its partial index instead of sorting the whole
    table on every claim."""
    c = queue.columns
    branches = []
    for rank, (kind, order) in enumerate(_due_kinds(queue, lease)):
        locked = (
            select(c.id)
            .where(kind if where is None else and_(kind, where))
            .order_by(*order)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte(f"due_{rank}")
        )
        branches.append(select(locked.c.id, literal(rank).label("rank")))
    due = union_all(*branches).subquery()
    return select(due.c.id).order_by(due.c.rank).limit(limit)


def mark_completed(
    session: Session, queue: QueueTable, lease: Lease, ids: Sequence[uuid.UUID] | None = None
) -> list[uuid.UUID]:
    """Complete the lease's rows (or `ids` among them); returns those that were still ours."""
    stmt = (
        _leased(queue, lease, lease.ids if ids is None else ids)
        .values(status=ProcessingStatus.completed, processed_at=func.now(), error_message=None)
        .returning(queue.columns.id)
    )
    return list(session.scalars(stmt))


def mark_failed(
    session: Session,
    queue: QueueTable,
    lease: Lease,
    item_id: uuid.UUID,
    error: str,
    *,
    base: float,
    cap: float,
) -> bool:
    """Record a failed attempt: retry later with backoff, or dead at max_attempts.

    Returns True when the row will be retried; False when it is dead or no longer ours.
    """
    return _fail(session, queue, _ours(queue, lease, [item_id]), error, base=base, cap=cap)


def fail_due(
    session: Session,
    queue: QueueTable,
    item_id: uuid.UUID,
    error: str,
    *,
    lease: timedelta,
    base: float,
    cap: float,
) -> bool:
    """mark_failed for work done in the caller's transaction (`complete_due`) and rolled back:
    the row is due again, and is failed unless another worker holds it or completed it."""
    c = queue.columns
    due = and_(c.id == item_id, or_(*(kind for kind, _ in _due_kinds(queue, lease))))
    return _fail(session, queue, due, error, base=base, cap=cap, skip_locked=True)


def _fail(
    session: Session,
    queue: QueueTable,
    row_is: ColumnElement[bool],
    error: str,
    *,
    base: float,
    cap: float,
    skip_locked: bool = False,
) -> bool:
    c = queue.columns
    row = session.execute(
        select(c.id, c.attempts, c.max_attempts)
        .where(row_is)
        .with_for_update(skip_locked=skip_locked)
    ).one_or_none()
    if row is None:
        return False
    attempt = row.attempts + 1
    retry = bool(attempt < row.max_attempts)
    next_retry = func.now() + backoff_delay(attempt, base=base, cap=cap) if retry else None
    session.execute(
        update(queue.model)
        .where(c.id == row.id)
        .values(
            status=ProcessingStatus.failed,
            attempts=attempt,
            error_message=error,
            next_retry_at=next_retry,
        )
    )
    return retry


def replay(session: Session, queue: QueueTable, where: ColumnElement[bool] | None = None) -> int:
    """Queue dead rows again (attempts reset); returns how many."""
    c = queue.columns
    dead = and_(c.status == ProcessingStatus.failed, c.attempts >= c.max_attempts)
    stmt = (
        update(queue.model)
        .where(dead if where is None else and_(dead, where))
        .values(status=ProcessingStatus.pending, attempts=0, next_retry_at=None)
    )
    return session.execute(stmt).rowcount  # type: ignore[attr-defined, no-any-return]


def _ours(queue: QueueTable, lease: Lease, ids: Sequence[uuid.UUID]) -> ColumnElement[bool]:
    c = queue.columns
    return and_(
        c.id.in_(ids),
        c.status == ProcessingStatus.processing,
        c.processing_started_at == lease.leased_at,
    )


def _leased(queue: QueueTable, lease: Lease, ids: Sequence[uuid.UUID]) -> Update:
    return update(queue.model).where(_ours(queue, lease, ids))


def release(
    session: Session, queue: QueueTable, lease: Lease, ids: Sequence[uuid.UUID], reason: str
) -> list[uuid.UUID]:
    """Give the lease's rows (`ids` among them) back pending, no attempt counted: work that
    waits (for a credential, say) rather than work that failed. Returns those still ours."""
    stmt = (
        _leased(queue, lease, ids)
        .values(status=ProcessingStatus.pending, processing_started_at=None, error_message=reason)
        .returning(queue.columns.id)
    )
    return list(session.scalars(stmt))
