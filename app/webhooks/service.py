"""process-webhook-queue's work: drain a batch of due events into their calls.

A batch is taken and applied in one transaction. When a payload the database refuses (a
malformed timestamp, say) fails the batch, each event is taken and applied again on its own,
so that only the bad one fails: attempts + 1, next_retry_at with backoff, and dead at
max_attempts. Before applying, the drain notes the batch in its worker's row
(liveness.note_applying): if the worker dies applying it, each of its events counts a lost
run and is then applied alone (app.rescue), so that an event that kills its worker is found
and ends dead, and the rest of its batch is applied.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import DBAPIError

from app import db, drains, liveness, queue
from app.config import get_settings
from app.drains import Drained
from app.models import WebhookEvent
from app.webhooks import queries

log = logging.getLogger(__name__)


def drain_batch(*, batch_size: int, on_full_batch: Callable[[], object]) -> Drained:
    """Take up to `batch_size` due events and apply them.

    A full batch suggests more are waiting: `on_full_batch` runs before the work, so that
    another worker can take the next batch meanwhile.
    """
    lease = timedelta(seconds=get_settings().lease_seconds)
    taken: list[uuid.UUID] = []

    def batch() -> Drained:
        with db.session_scope() as session:
            claimed = queries.take_due_events(session, limit=batch_size, lease=lease)
            taken.extend(claimed.ids)
            if len(taken) == batch_size or claimed.alone:
                on_full_batch()
            if taken:
                liveness.note_applying(taken)
                queries.apply_events(session, taken)
        return Drained(len(taken), {"applied": len(taken)}, 0)

    def each(error: DBAPIError) -> Drained:
        if not taken:
            raise error  # the claim itself failed: there is nothing to apply one by one
        return _apply_one_by_one(taken, lease)

    return drains.batch_or_each("webhook", batch, each)


def _apply_one_by_one(event_ids: list[uuid.UUID], lease: timedelta) -> Drained:
    settings = get_settings()
    applied: list[uuid.UUID] = []

    def apply(event_id: uuid.UUID) -> None:
        where = WebhookEvent.id == event_id
        taken = queries.take_due_events(session, limit=1, lease=lease, where=where).ids
        if taken:
            queries.apply_events(session, taken)
        applied.extend(taken)

    with db.session_scope() as session:
        refused = drains.one_by_one(session, event_ids, apply)
        for event_id, reason in refused:
            queue.fail_due(
                session,
                queries.WEBHOOK_QUEUE,
                event_id,
                reason,
                lease=lease,
                base=settings.retry_base_seconds,
                cap=settings.retry_max_seconds,
            )
            log.warning("webhook event %s failed: %s", event_id, reason)
    return Drained(len(event_ids), {"applied": len(applied)}, len(refused))
