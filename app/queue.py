"""The claim core that every queue table uses.

A queue row is `pending`, `processing` (claimed), `completed`, or `failed`. A failed row is
retried when next_retry_at is due while attempts < max_attempts; a failed row with attempts =
max_attempts is dead until replayed. (sync_queue spells these retry_count and max_retries:
QueueTable names each table's columns.)

Every claim is one statement, `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING`, so two workers never hold the same row. A claim records the worker process that
made it (worker_id, app.liveness) and its time (processing_started_at, the Lease): completing
or failing a row checks the Lease, so a worker whose claim was taken over changes nothing.
A `processing` row is held while its worker lives, however long the work takes; a claim made
outside a worker has no worker_id and holds for LEASE_SECONDS.

A row whose worker died is taken over by the next claim, alone: the lost run counts in
lost_runs, and a row lost MAX_LOST_RUNS times is dead ("worker lost 3 times") instead of
killing worker after worker. A row that was lost once stays a suspect, claimed alone, until
it is done, so that a row that kills its worker takes no other row with it.

Pending rows are taken in fair shares across agencies where the queue says whose a row is
(`QueueTable.shares_by`; app.shares), so that one agency's backlog does not hold another's
new work back; FAIR_SHARES=false takes them oldest first over all agencies.

Work that is all done in the database needs no claim: `complete_due` takes due rows as
completed in the caller's transaction, and the same transaction does the work. Its row locks
keep other workers off until it commits; if it rolls back, or its worker dies, the rows are
due again as they were (app.rescue counts the lost run of what a dead worker was applying).
"""

from __future__ import annotations

import enum
import functools
import random
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Table,
    and_,
    any_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.dml import ReturningUpdate

from app import liveness, metrics, shares
from app.config import get_settings
from app.models import ProcessingStatus


@dataclass(frozen=True)
class Lease:
    """Rows claimed together, and the processing_started_at that proves they are still ours.
    `alone` marks a claim of one lost or suspect row: more may be waiting behind it."""

    leased_at: datetime | None
    ids: list[uuid.UUID]
    alone: bool = False


class Due(enum.Enum):
    """The kinds of due row, in the order a claim takes them."""

    LOST = "lost"  # processing, but its worker is gone (without a worker: its lease expired)
    SUSPECT = "suspect"  # due again after a lost run: taken alone, in case it was the cause
    RETRY = "retry"  # failed with attempts left, and its next_retry_at has come
    PENDING = "pending"


EVERY_KIND = (Due.LOST, Due.SUSPECT, Due.RETRY, Due.PENDING)
ALONE = (Due.LOST, Due.SUSPECT)  # each taken by a claim of its own


def lost_message(runs: ColumnElement[int]) -> ColumnElement[str]:
    """What a row says after its lost runs, e.g. `worker lost 3 times`."""
    return func.concat("worker lost ", runs, case((runs == 1, " time"), else_=" times"))


@dataclass(frozen=True, eq=False)
class QueueTable:
    """How one table spells the queue columns, and the order its seed's index claims in.

    `claims` names a column that counts every claim of a row, lost runs included.
    `unscheduled_retries` makes a failed row without next_retry_at due (seed 004's retry job).
    `ready` is what a due row must also meet (sync_queue: its record's earlier items are done).
    `held` says the table records who holds a claim (worker_id); webhook_queue's rows are
    never held, only completed in the transaction that applies them.
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
    held: bool = True
    shares_by: ColumnElement[Any] | None = None

    @property
    def table(self) -> Table:
        """The model's table: the queue's statements are Core statements, which skip the
        ORM's work for objects in the session that a claim never loads."""
        table: Table = self.model.__table__
        return table

    @property
    def columns(self) -> Any:
        return self.table.c

    @property
    def counters(self) -> tuple[Any, Any]:
        """The attempts and max_attempts columns."""
        return self.columns[self.attempts], self.columns[self.max_attempts]

    @functools.cached_property
    def unlost(self) -> ColumnElement[bool]:
        """Never lost: the rows a batch may take (one object, for app.shares' cache)."""
        unlost: ColumnElement[bool] = self.columns.lost_runs == 0
        return unlost

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
    hold: bool = True,
    fair: bool = True,
) -> Lease:
    """Claim up to `limit` due rows (of `kinds`, meeting `where` and the queue's `ready`).

    A row whose worker died, or a suspect, is taken first and alone (Lease.alone). Otherwise
    it takes retries that came due (by next_retry_at), then pending rows (in fair shares
    across agencies where the queue has `shares_by`, each agency's in the queue's order; else
    in the queue's order), skipping rows another transaction has locked. Each row taken is
    `processing`, held by this process (worker_id) since processing_started_at = now(): that
    timestamp and the ids (the Lease) make the rows ours until they are completed, failed or
    released. A lost run counts in lost_runs; at MAX_LOST_RUNS the row is dead and not
    returned.

    A claim that hands the rows to another task (`hold=False`) leaves them to the lease
    until that task holds them (`hold`). `fair=False` is for a claim aimed at given rows
    (`where` names them): it takes them in the queue's order, as there is nothing to share.
    """
    holder = liveness.holder() if hold else None
    fair = fair and get_settings().fair_shares
    alone = [kind for kind in kinds if kind in ALONE]
    rest = [kind for kind in kinds if kind not in ALONE]
    with in_queue_order(session):
        if alone:
            taken = _claim(session, queue, 1, lease, where, alone, holder, fair=False)
            if taken.ids:
                return Lease(taken.leased_at, taken.ids, alone=True)
        if not rest:
            return Lease(None, [])
        return _claim(session, queue, limit, lease, where, rest, holder, fair=fair)


@contextmanager
def in_queue_order(session: Session) -> Iterator[None]:
    """Plan the statements inside as walks of the queue's indexes in its order: no sorts.

    Every claim reads each kind of due row in an order that one of the queue's partial
    indexes keeps (pending by created_at, say), and stops at its limit. A planner that thinks
    few rows are pending prefers the seed's idx_*_status and a sort, which then reads every
    pending row, and the dead ones, on every claim. It thinks so whenever the statistics
    were taken while the queue was empty, until ANALYZE runs again: in a table of millions
    of finished rows, not before a tenth of them changed. Where a sort is the only way (the
    order of a claim's kinds) it still sorts; JIT goes off too, as the cost that steers the
    planner away from sorts would otherwise have every claim compiled.
    """
    session.execute(SORTS_OFF)
    try:
        yield
    finally:
        session.execute(SORTS_AS_BEFORE)


# Each pair in one round trip: psycopg2 sends a parameterless string as it is.
SORTS_OFF = text("SET LOCAL enable_sort = off; SET LOCAL jit = off")
SORTS_AS_BEFORE = text("RESET enable_sort; RESET jit")


def _claim(
    session: Session,
    queue: QueueTable,
    limit: int,
    lease: timedelta | None,
    where: ColumnElement[bool] | None,
    kinds: Sequence[Due],
    holder: str | None,
    *,
    fair: bool,
) -> Lease:
    c = queue.columns
    attempts, max_attempts = queue.counters
    status = ProcessingStatus
    picked = _due(queue, limit=limit, lease=lease, where=where, kinds=kinds, fair=fair)
    lost = c.status == status.processing
    runs = c.lost_runs + 1
    last_run = and_(lost, runs >= get_settings().max_lost_runs)
    values: dict[Any, Any] = {
        c.status: case(
            (last_run, cast(status.failed.value, c.status.type)),
            else_=cast(status.processing.value, c.status.type),
        ),
        attempts: case((last_run, max_attempts), else_=attempts),
        c.lost_runs: case((lost, runs), else_=c.lost_runs),
        c.error_message: case((lost, lost_message(runs)), else_=c.error_message),
        c.processing_started_at: func.now(),
        c.next_retry_at: case((last_run, None), else_=c.next_retry_at),
    }
    if queue.held:
        values[c.worker_id] = holder
    if queue.claims is not None:
        claims = c[queue.claims]
        values[claims] = case((last_run, claims), else_=claims + 1)
    stmt = (
        update(queue.table)
        .where(c.id == any_(picked))
        .values(values)
        .returning(c.id, c.status, c.processing_started_at)
    )
    with metrics.timed_claim(queue.model.__tablename__):
        rows = [row for row in session.execute(stmt) if row.status == status.processing]
    # now() is the transaction's start, so every row of one claim has the same lease.
    return Lease(rows[0].processing_started_at if rows else None, [row.id for row in rows])


def hold(session: Session, queue: QueueTable, lease: Lease) -> list[uuid.UUID]:
    """This process takes over the hold of rows another claimed for it (`claim(hold=False)`);
    returns those still ours."""
    stmt = (
        update(queue.table)
        .where(ours(queue, lease, lease.ids))
        .values({queue.columns.worker_id: liveness.holder()})
        .returning(queue.columns.id)
    )
    return list(session.scalars(stmt))


def lose(session: Session, queue: QueueTable, ids: Sequence[uuid.UUID]) -> None:
    """Count a lost run on each of `ids` that is still due: a worker died applying them in a
    transaction that rolled back (complete_due). Each is a suspect now, and one lost
    MAX_LOST_RUNS times is dead."""
    c = queue.columns
    attempts, max_attempts = queue.counters
    runs = c.lost_runs + 1
    last_run = runs >= get_settings().max_lost_runs
    failed = cast(ProcessingStatus.failed.value, c.status.type)
    stmt = (
        update(queue.table)
        .where(
            c.id.in_(ids),
            c.status.in_([ProcessingStatus.pending, ProcessingStatus.failed]),
            attempts < max_attempts,
        )
        .values(
            {
                c.lost_runs: runs,
                c.status: case((last_run, failed), else_=c.status),
                attempts: case((last_run, max_attempts), else_=attempts),
                c.error_message: lost_message(runs),
                c.next_retry_at: case((last_run, None), else_=c.next_retry_at),
            }
        )
    )
    session.execute(stmt)


def complete_due(
    session: Session,
    queue: QueueTable,
    *,
    limit: int,
    lease: timedelta,
    where: ColumnElement[bool] | None = None,
    fair: bool = True,
) -> Lease:
    """Mark up to `limit` due rows completed, for work done in the caller's transaction;
    returns their ids (the Lease has no time: nothing is written until the commit).

    It takes due rows in the order `claim` does (a lost or suspect row alone, then due
    retries, then pending rows in fair shares or in the queue's order), skipping rows another
    transaction has locked. The rows are ours while the caller's transaction holds their
    locks, so no other drain sees them; if it rolls back, they are due again as they were.
    `fair` as for `claim`.
    """
    kinds = [kind for kind in EVERY_KIND if kind not in ALONE]
    with in_queue_order(session):
        alone = _complete(
            session, queue, limit=1, lease=lease, where=where, kinds=ALONE, fair=False
        )
        if alone:
            return Lease(None, alone, alone=True)
        taken = _complete(
            session, queue, limit=limit, lease=lease, where=where, kinds=kinds, fair=fair
        )
        return Lease(None, taken)


def _complete(
    session: Session,
    queue: QueueTable,
    *,
    limit: int,
    lease: timedelta,
    where: ColumnElement[bool] | None,
    kinds: Sequence[Due],
    fair: bool,
) -> list[uuid.UUID]:
    fair = fair and get_settings().fair_shares
    if where is None:
        stmt = _cached_completion(queue, limit, lease, tuple(kinds), fair)
    else:
        stmt = _completion(queue, limit, lease, tuple(kinds), fair, where)
    with metrics.timed_claim(queue.model.__tablename__):
        return list(session.scalars(stmt))


def _completion(
    queue: QueueTable,
    limit: int,
    lease: timedelta,
    kinds: tuple[Due, ...],
    fair: bool,
    where: ColumnElement[bool] | None = None,
) -> ReturningUpdate[tuple[uuid.UUID]]:
    """complete_due's statement for one kind of claim."""
    c = queue.columns
    picked = _due(queue, limit=limit, lease=lease, where=where, kinds=kinds, fair=fair)
    return (
        update(queue.table)
        .where(c.id == any_(picked))
        .values(status=ProcessingStatus.completed, processed_at=func.now(), error_message=None)
        .returning(c.id)
    )


# The drains' claims are built once per queue and kind of claim, not for each batch: a fair
# claim took about a millisecond to build.
_cached_completion = functools.lru_cache(maxsize=64)(_completion)


def _due_kinds(
    queue: QueueTable, lease: timedelta | None, kinds: Sequence[Due] = EVERY_KIND
) -> list[tuple[ColumnElement[bool], Sequence[Any]]]:
    """Each kind of due row with the order it is taken in: rows whose worker is gone, then
    suspects, retries that came due, and pending rows in the queue's order. Only lost and
    suspect rows have lost runs; the other kinds leave them out."""
    c = queue.columns
    attempts, max_attempts = queue.counters
    status = ProcessingStatus
    retry_at: ColumnElement[bool] = c.next_retry_at <= func.now()
    if queue.unscheduled_retries:
        retry_at = or_(c.next_retry_at.is_(None), retry_at)
    retry_order = c.next_retry_at.nulls_first() if queue.unscheduled_retries else c.next_retry_at
    retry = (c.status == status.failed) & (attempts < max_attempts) & retry_at
    pending = c.status == status.pending
    unlost = queue.unlost
    suspect = (  # the terms of the idx_*_suspect index, then what makes one due
        (c.lost_runs > 0)
        & c.status.in_([status.pending, status.failed])
        & (attempts < max_attempts)
        & or_(pending, retry)
    )
    every = {
        Due.SUSPECT: (suspect, [c.created_at]),
        Due.RETRY: (retry & unlost, [retry_order]),
        Due.PENDING: (pending & unlost, queue.order_by),
    }
    if Due.LOST in kinds:
        if lease is None:
            raise ValueError("only a claim that knows the lease can take over lost runs")
        every[Due.LOST] = (
            (c.status == status.processing) & _gone(queue, lease),
            [c.processing_started_at],
        )
    return [every[kind] for kind in EVERY_KIND if kind in kinds]


def _gone(queue: QueueTable, lease: timedelta) -> ColumnElement[bool]:
    """A claim nobody holds any more: its worker's row is gone, or, made outside a worker,
    its lease expired."""
    c = queue.columns
    expired: ColumnElement[bool] = c.processing_started_at < func.now() - lease
    if not queue.held:
        return expired
    return or_(
        and_(c.worker_id.is_(None), expired),
        and_(c.worker_id.is_not(None), ~liveness.alive(c.worker_id)),
    )


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
) -> ColumnElement[Any]:
    """An array of the ids of up to `limit` due rows, locked, kind by kind (_due_kinds).
    Each kind is its own locked, limited scan, so each can follow its partial index instead of
    sorting the whole table on every claim; with `fair` (FAIR_SHARES and the caller's wish),
    pending rows of a queue with `shares_by` are taken in fair shares (app.shares).

    An array, not a subquery: `id = ANY(ARRAY(...))` is one initial plan and a primary key
    lookup per id, where `id IN (...)` let the planner hash the ids against a scan of the
    whole table when its statistics lagged behind a burst of new rows."""
    c = queue.columns
    branches = []
    group = queue.shares_by if fair else None
    for rank, ((kind, order), due_kind) in enumerate(
        zip(_due_kinds(queue, lease, kinds), _kinds_in_order(kinds), strict=True)
    ):
        conditions = [cond for cond in (queue.ready, where) if cond is not None]
        locked: CTE
        if group is not None and due_kind is Due.PENDING:
            locked = shares.pending_by_share(
                queue.table,
                group=group,
                order=queue.order_by,
                conditions=[queue.unlost, *conditions],
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
    return func.array(select(due.c.id).order_by(due.c.rank).limit(limit).scalar_subquery())


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
        update(queue.table)
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
        update(queue.table)
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


def replay(
    session: Session, queue: QueueTable, where: ColumnElement[bool] | None = None
) -> Counter[str]:
    """Queue dead rows (those meeting `where`) again, attempts and lost runs reset; returns
    how many, by the reason each was dead for."""
    c = queue.columns
    dead = queue.dead()
    stmt = (
        update(queue.table)
        .where(dead if where is None else and_(dead, where))
        .values(
            {
                c.status: ProcessingStatus.pending,
                queue.counters[0]: 0,
                c.lost_runs: 0,
                c.next_retry_at: None,
            }
        )
        .returning(c.error_message)
    )
    return Counter(reason or "no reason recorded" for reason in session.scalars(stmt))


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
        update(queue.table)
        .where(ours(queue, lease, ids))
        .values(status=ProcessingStatus.pending, processing_started_at=None, error_message=reason)
        .returning(queue.columns.id)
    )
    return list(session.scalars(stmt))
