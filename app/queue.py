"""The claim/lease core that every queue table uses.

A queue row is `pending`, `processing` (leased to a worker since processing_started_at),
`completed`, or `failed`. A failed row is retried when next_retry_at is due while
attempts < max_attempts; a failed row with attempts = max_attempts is dead until replayed.
(sync_queue spells these retry_count and max_retries: QueueTable names each table's columns.)

Every claim is one statement, `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING`, so two workers never hold the same row. The claim's processing_started_at is its
lease: completing or failing a row checks it, so a worker whose lease expired and was taken
over changes nothing. A `processing` row whose lease expired
belonged to a worker that died: the claim counts that run as a failed attempt and takes the
row again, or buries it as dead when that was its last attempt.

Pending rows are taken in fair shares across agencies where the queue says whose a row is
(`QueueTable.shares_by`; app.shares), so that one agency's backlog does not hold another's
new work back; FAIR_SHARES=false takes them oldest first over all agencies.

Work that is all done in the database needs no lease: `complete_due` takes due rows as
completed in the caller's transaction, and the same transaction does the work. Its row locks
keep other workers off until it commits; if it rolls back, or its worker dies, the rows are
due again as they were.
"""

from __future__ import annotations

import enum
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Select,
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

from app import metrics, shares
from app.config import get_settings
from app.models import ProcessingStatus

LEASE_EXPIRED = "lease expired: the worker stopped before finishing"


@dataclass(frozen=True)
class Lease:
    """Rows claimed together, and the processing_started_at that proves they are still ours."""

    leased_at: datetime | None
    ids: list[uuid.UUID]


class Due(enum.Enum):
    """The kinds of due row, in the order a claim takes them."""

    LOST = "lost"  # processing, but its lease expired: its worker died
    RETRY = "retry"  # failed with attempts left, and its next_retry_at has come
    PENDING = "pending"


EVERY_KIND = (Due.LOST, Due.RETRY, Due.PENDING)


@dataclass(frozen=True, eq=False)
class QueueTable:
    """How one table spells the queue columns, and the order its seed's index claims in.

    `claims` names a column that counts every claim of a row, lost runs included.
    `unscheduled_retries` makes a failed row without next_retry_at due (seed 004's retry job).
    `ready` is what a due row must also meet (sync_queue: its record's earlier items are done).
    `shares_by` is what the pending rows are shared by fairly (the agency: a column, or an
    expression of the row): each claim takes pending rows round-robin across its values, in
    `order_by` inside each (app.shares); it needs a partial index on that very expression
    and `order_by`, (shares_by, *order_by) WHERE status = 'pending'.
    """

    model: Any
    order_by: Sequence[InstrumentedAttribute[Any]]
    attempts: str = "attempts"
    max_attempts: str = "max_attempts"
    claims: str | None = None
    unscheduled_retries: bool = False
    ready: ColumnElement[bool] | None = None
    shares_by: ColumnElement[Any] | None = None

    @property
    def columns(self) -> Any:
        return self.model.__table__.c

    @property
    def counters(self) -> tuple[Any, Any]:
        """The attempts and max_attempts columns."""
        return self.columns[self.attempts], self.columns[self.max_attempts]

    def dead(self) -> ColumnElement[bool]:
        """Failed at its last attempt: left alone until replayed."""
        attempts, max_attempts = self.counters
        return and_(self.columns.status == ProcessingStatus.failed, attempts >= max_attempts)


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
    lease: timedelta | None,
    where: ColumnElement[bool] | None = None,
    kinds: Sequence[Due] = EVERY_KIND,
    fair: bool = True,
) -> Lease:
    """Lease up to `limit` due rows (of `kinds`, meeting `where` and the queue's `ready`).

    It takes runs whose lease expired (oldest lease first), then retries that came due (by
    next_retry_at), then pending rows (in fair shares across agencies where the queue has
    `shares_by`, each agency's in the queue's order; else in the queue's order), skipping rows
    another transaction has locked. Each row taken is `processing` with processing_started_at
    = now(): that timestamp and the ids (the Lease) make the rows ours until they are
    completed or failed, or until the lease expires and another claim takes them over. A lost
    run counts as an attempt; when it was the row's last, the row is dead instead and is not
    returned. `fair=False` is for a claim aimed at given rows (`where` names them): it takes
    them in the queue's order, as there is nothing to share.
    """
    c = queue.columns
    attempts, max_attempts = queue.counters
    status = ProcessingStatus
    picked = _due(queue, limit=limit, lease=lease, where=where, kinds=kinds, fair=fair)
    # A lost run counts as an attempt; on the last one the row is dead rather than re-run.
    lost = c.status == status.processing
    last_try = and_(lost, attempts + 1 >= max_attempts)
    values: dict[Any, Any] = {
        c.status: case(
            (last_try, cast(status.failed.value, c.status.type)),
            else_=cast(status.processing.value, c.status.type),
        ),
        attempts: case((lost, attempts + 1), else_=attempts),
        c.error_message: case((lost, LEASE_EXPIRED), else_=c.error_message),
        c.processing_started_at: func.now(),
        c.next_retry_at: case((last_try, None), else_=c.next_retry_at),
    }
    if queue.claims is not None:
        claims = c[queue.claims]
        values[claims] = case((last_try, claims), else_=claims + 1)
    stmt = (
        update(queue.model)
        .where(c.id.in_(picked))
        .values(values)
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
    fair: bool = True,
) -> list[uuid.UUID]:
    """Mark up to `limit` due rows completed, for work done in the caller's transaction;
    returns their ids.

    It takes due rows as `claim` does (expired leases, due retries, pending rows in fair
    shares or in the queue's order), skipping rows another transaction has locked. No lease
    is written: the rows are ours while the caller's transaction holds their locks, so no
    other drain sees them; if it rolls back, they are due again as they were. `fair` as for
    `claim`.
    """
    c = queue.columns
    stmt = (
        update(queue.model)
        .where(c.id.in_(_due(queue, limit=limit, lease=lease, where=where, fair=fair)))
        .values(status=ProcessingStatus.completed, processed_at=func.now(), error_message=None)
        .returning(c.id)
    )
    with metrics.timed_claim(queue.model.__tablename__):
        return list(session.scalars(stmt))


def _due_kinds(
    queue: QueueTable, lease: timedelta | None, kinds: Sequence[Due] = EVERY_KIND
) -> list[tuple[ColumnElement[bool], Sequence[Any]]]:
    """Each kind of due row with the order it is taken in: runs whose lease expired, retries
    that came due, then pending rows in the queue's order."""
    c = queue.columns
    attempts, max_attempts = queue.counters
    status = ProcessingStatus
    retry_at: ColumnElement[bool] = c.next_retry_at <= func.now()
    if queue.unscheduled_retries:
        retry_at = or_(c.next_retry_at.is_(None), retry_at)
    retry_order = c.next_retry_at.nulls_first() if queue.unscheduled_retries else c.next_retry_at
    every = {
        Due.RETRY: (
            (c.status == status.failed) & (attempts < max_attempts) & retry_at,
            [retry_order],
        ),
        Due.PENDING: (c.status == status.pending, queue.order_by),
    }
    if Due.LOST in kinds:
        if lease is None:
            raise ValueError("only a claim that knows the lease can take over lost runs")
        expired = (c.status == status.processing) & (c.processing_started_at < func.now() - lease)
        every[Due.LOST] = (expired, [c.processing_started_at])
    return [every[kind] for kind in EVERY_KIND if kind in kinds]


def count_due(session: Session, queue: QueueTable, *, lease: timedelta) -> int:
    """How many rows a claim could take now."""
    due = or_(*(kind for kind, _ in _due_kinds(queue, lease)))
    if queue.ready is not None:
        due = and_(due, queue.ready)
    return session.scalar(select(func.count()).select_from(queue.model).where(due)) or 0


def _due(
    queue: QueueTable,
    *,
    limit: int,
    lease: timedelta | None,
    where: ColumnElement[bool] | None,
    kinds: Sequence[Due] = EVERY_KIND,
    fair: bool = True,
) -> Select[tuple[uuid.UUID]]:
    """Ids of up to `limit` due rows, locked, kind by kind (_due_kinds). Each kind is its own
    locked, limited scan, so each can follow its partial index instead of sorting the whole
    table on every claim; pending rows of a queue with `shares_by` are taken in fair shares
    (app.shares)."""
    c = queue.columns
    branches = []
    group = queue.shares_by if fair and get_settings().fair_shares else None
    for rank, ((kind, order), due_kind) in enumerate(
        zip(_due_kinds(queue, lease, kinds), _kinds_in_order(kinds), strict=True)
    ):
        conditions = [cond for cond in (queue.ready, where) if cond is not None]
        locked: CTE
        if group is not None and due_kind is Due.PENDING:
            locked = shares.pending_by_share(
                queue.model.__table__,
                group=group,
                order=queue.order_by,
                conditions=conditions,
                limit=limit,
                name=f"due_{rank}",
            )
        else:
            locked = (
                select(c.id)
                .where(kind, *conditions)
                .order_by(*order)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .cte(f"due_{rank}")
            )
        branches.append(select(locked.c.id, literal(rank).label("rank")))
    due = union_all(*branches).subquery()
    return select(due.c.id).order_by(due.c.rank).limit(limit)


def _kinds_in_order(kinds: Sequence[Due]) -> list[Due]:
    """The kinds _due_kinds returns, in its order."""
    return [kind for kind in EVERY_KIND if kind in kinds]


def mark_completed(
    session: Session,
    queue: QueueTable,
    lease: Lease,
    ids: Sequence[uuid.UUID] | None = None,
    **values: Any,
) -> list[uuid.UUID]:
    """Complete the lease's rows (or `ids` among them), setting `values` too; returns those
    that were still ours."""
    stmt = (
        update(queue.model)
        .where(ours(queue, lease, lease.ids if ids is None else ids))
        .values(
            status=ProcessingStatus.completed,
            processed_at=func.now(),
            error_message=None,
            **values,
        )
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
    dead: bool = False,
) -> bool:
    """Record a failed attempt: retry later with backoff, or dead at max_attempts. A `dead`
    failure (one that no retry can fix) uses up the row's attempts at once.

    Returns True when the row will be retried; False when it is dead or no longer ours.
    """
    row_is = ours(queue, lease, [item_id])
    return _fail(session, queue, row_is, error, base=base, cap=cap, dead=dead)


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
    dead: bool = False,
) -> bool:
    c = queue.columns
    attempts, max_attempts = queue.counters
    row = session.execute(
        select(c.id, attempts.label("attempts"), max_attempts.label("max_attempts"))
        .where(row_is)
        .with_for_update(skip_locked=skip_locked)
    ).one_or_none()
    if row is None:
        return False
    attempt = max(row.attempts + 1, row.max_attempts if dead else 0)
    retry = bool(attempt < row.max_attempts)
    next_retry = func.now() + backoff_delay(attempt, base=base, cap=cap) if retry else None
    session.execute(
        update(queue.model)
        .where(c.id == row.id)
        .values(
            {
                c.status: ProcessingStatus.failed,
                attempts: attempt,
                c.error_message: error,
                c.next_retry_at: next_retry,
            }
        )
    )
    return retry


def replay(session: Session, queue: QueueTable, where: ColumnElement[bool] | None = None) -> int:
    """Queue dead rows (those meeting `where`) again, attempts reset; returns how many."""
    c = queue.columns
    dead = queue.dead()
    stmt = (
        update(queue.model)
        .where(dead if where is None else and_(dead, where))
        .values({c.status: ProcessingStatus.pending, queue.counters[0]: 0, c.next_retry_at: None})
    )
    return session.execute(stmt).rowcount  # type: ignore[attr-defined, no-any-return]


def ours(queue: QueueTable, lease: Lease, ids: Sequence[uuid.UUID]) -> ColumnElement[bool]:
    """The rows among `ids` that the claim that made `lease` still holds."""
    c = queue.columns
    return and_(
        c.id.in_(ids),
        c.status == ProcessingStatus.processing,
        c.processing_started_at == lease.leased_at,
    )


def release(
    session: Session, queue: QueueTable, lease: Lease, ids: Sequence[uuid.UUID], reason: str
) -> list[uuid.UUID]:
    """Give the lease's rows (`ids` among them) back pending, no attempt counted: work that
    waits (for a credential, say) rather than work that failed. Returns those still ours."""
    stmt = (
        update(queue.model)
        .where(ours(queue, lease, ids))
        .values(status=ProcessingStatus.pending, processing_started_at=None, error_message=reason)
        .returning(queue.columns.id)
    )
    return list(session.scalars(stmt))
