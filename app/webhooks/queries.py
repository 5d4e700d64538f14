"""SQL for the webhook queue: the claim, the batch apply, and replay.

Nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import ColumnElement, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app import queue
from app.models import WebhookEvent

# FIFO by arrival: idx_webhook_queue_pending; due retries come through idx_webhook_queue_retry.
WEBHOOK_QUEUE = queue.QueueTable(WebhookEvent, order_by=[WebhookEvent.created_at])

APPLY = text("SELECT apply_webhook_events(:ids)").bindparams(bindparam("ids", type_=ARRAY(Uuid)))


def claim_webhook_events(session: Session, *, limit: int, lease: timedelta) -> queue.Lease:
    """Lease up to `limit` due events, oldest first."""
    return queue.claim(session, WEBHOOK_QUEUE, limit=limit, lease=lease)


def complete_and_apply(
    session: Session, lease: queue.Lease, ids: Sequence[uuid.UUID] | None = None
) -> int:
    """Mark the leased events completed and apply them to their calls, in the caller's
    transaction; returns how many were still ours. Completing first locks the rows, so a
    claim that took over an expired lease can neither see nor apply them meanwhile."""
    done = queue.mark_completed(session, WEBHOOK_QUEUE, lease, ids)
    if done:
        session.execute(APPLY, {"ids": done})
    return len(done)


def count_due(session: Session, *, lease: timedelta) -> int:
    """Events a drain could claim now: pending, retries that came due, lost runs."""
    return queue.count_due(session, WEBHOOK_QUEUE, lease=lease)


def replay_dead(
    session: Session,
    *,
    agency_id: uuid.UUID | None = None,
    event_ids: Sequence[uuid.UUID] = (),
) -> int:
    """Queue dead events again: all of them, one agency's, or the given ones."""
    where: ColumnElement[bool] | None = None
    if agency_id is not None:
        where = WebhookEvent.agency_id == agency_id
    if event_ids:
        where = WebhookEvent.id.in_(event_ids)
    return queue.replay(session, WEBHOOK_QUEUE, where)
