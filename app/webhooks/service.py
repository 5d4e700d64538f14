"""process-webhook-queue's work: drain a batch of due events into their calls.

A batch is taken and applied in one transaction. When a payload the database refuses (a
malformed timestamp, say) fails the batch, each event is taken and applied again on its own,
so that only the bad one fails: attempts + 1, next_retry_at with backoff, and dead at
max_attempts.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import DBAPIError, OperationalError

from app import db, queue
from app.config import get_settings
from app.models import WebhookEvent
from app.webhooks import queries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drained:
    claimed: int
    applied: int
    failed: int


def drain_batch(*, batch_size: int, on_full_batch: Callable[[], object]) -> Drained:
    """Take up to `batch_size` due events and apply them.

    A full batch suggests more are waiting: `on_full_batch` runs before the work, so that
    another worker can take the next batch meanwhile.
    """
    lease = timedelta(seconds=get_settings().lease_seconds)
    taken: list[uuid.UUID] = []
    try:
        with db.session_scope() as session:
            taken = queries.take_due_events(session, limit=batch_size, lease=lease)
            if len(taken) == batch_size:
                on_full_batch()
            if taken:
                queries.apply_events(session, taken)
        return Drained(len(taken), len(taken), 0)
    except OperationalError:
        raise  # the database itself: the task retries, and the rolled-back events are due
    except DBAPIError as error:
        if not taken:
            raise
        log.warning(
            "webhook batch failed (%s); applying its events one by one", db.error_reason(error)
        )
    return _apply_one_by_one(taken, lease)


def _apply_one_by_one(event_ids: list[uuid.UUID], lease: timedelta) -> Drained:
    settings = get_settings()
    applied = failed = 0
    with db.session_scope() as session:
        for event_id in event_ids:
            try:
                with session.begin_nested():
                    taken = queries.take_due_events(
                        session, limit=1, lease=lease, where=WebhookEvent.id == event_id
                    )
                    if taken:
                        queries.apply_events(session, taken)
                applied += len(taken)
            except OperationalError:
                raise
            except DBAPIError as error:
                failed += 1
                queue.fail_due(
                    session,
                    queries.WEBHOOK_QUEUE,
                    event_id,
                    db.error_reason(error),
                    lease=lease,
                    base=settings.retry_base_seconds,
                    cap=settings.retry_max_seconds,
                )
                log.warning("webhook event %s failed: %s", event_id, db.error_reason(error))
    return Drained(len(event_ids), applied, failed)
