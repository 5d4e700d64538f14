"""SQL for the webhook queue: the claim, the batch apply, and replay.

Nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import ColumnElement, Uuid, bindparam, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app import queue
from app.models import WebhookEvent

# FIFO by arrival inside each agency, in fair shares across agencies:
# idx_webhook_queue_agency_pending, then idx_webhook_queue_pending for what the shares leave;
# due retries come through idx_webhook_queue_retry. The shares go by the agency's 16 bytes,
# the expression that index is on: on the bare column the seed's idx_webhook_queue_agency
# would tempt the planner to read and sort an agency's whole backlog for its share
# (app.shares). An event is never held: it is completed in the transaction that applies it.
BY_AGENCY = func.uuid_send(WebhookEvent.agency_id)
WEBHOOK_QUEUE = queue.QueueTable(
    WebhookEvent, order_by=[WebhookEvent.created_at], shares_by=BY_AGENCY, held=False
)

APPLY = text("SELECT apply_webhook_events(:ids)").bindparams(bindparam("ids", type_=ARRAY(Uuid)))


def take_due_events(
    session: Session, *, limit: int, lease: timedelta, where: ColumnElement[bool] | None = None
) -> queue.Lease:
    """Mark up to `limit` due events (meeting `where`) completed, to be applied in the
    caller's transaction. It takes one suspect alone (an event a dead worker was applying),
    else retries that came due (by next_retry_at), then pending events in fair shares across
    agencies, each agency's oldest first (created_at), skipping events another transaction
    has locked. The events are ours while the caller's transaction holds their row locks: no
    other drain sees them, and a batch that rolls back is due again. Events named by `where`
    are taken as they come: there is nothing to share between agencies."""
    return queue.complete_due(
        session, WEBHOOK_QUEUE, limit=limit, lease=lease, where=where, fair=where is None
    )


def apply_events(session: Session, ids: Sequence[uuid.UUID]) -> None:
    """apply_webhook_events: the events' calls created or brought up to date."""
    session.execute(APPLY, {"ids": list(ids)})


def count_due(session: Session, *, lease: timedelta) -> int:
    """Events a drain could claim now: pending, retries that came due, lost runs."""
    return queue.count_due(session, WEBHOOK_QUEUE, lease=lease)


def replay_dead(
    session: Session,
    *,
    agency_id: uuid.UUID | None = None,
    event_ids: Sequence[uuid.UUID] = (),
) -> Counter[str]:
    """Queue dead events again: all of them, one agency's, or the given ones."""
    where: ColumnElement[bool] | None = None
    if agency_id is not None:
        where = WebhookEvent.agency_id == agency_id
    if event_ids:
        where = WebhookEvent.id.in_(event_ids)
    return queue.replay(session, WEBHOOK_QUEUE, where)
