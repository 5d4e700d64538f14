"""process-webhook-queue's work: drain a batch of due events into their calls.

A batch is applied in one transaction. When a payload the database refuses (a malformed
timestamp, say) fails the batch, each event is retried on its own so that only the bad one
fails: attempts + 1, next_retry_at with backoff, and dead at max_attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import DBAPIError, OperationalError

from app import db, queue
from app.config import get_settings
from app.webhooks import queries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drained:
    claimed: int
    applied: int
    failed: int


def drain_batch(*, batch_size: int, on_full_batch: Callable[[], object]) -> Drained:
    """Claim up to `batch_size` due events and apply them.

    A full batch suggests more are waiting: `on_full_batch` runs before the work, so that
    another worker can start on the next batch meanwhile.
    """
    settings = get_settings()
    with db.session_scope() as session:
        lease = queries.claim_webhook_events(
            session, limit=batch_size, lease=timedelta(seconds=settings.lease_seconds)
        )
    if not lease.ids:
        return Drained(0, 0, 0)
    if len(lease.ids) == batch_size:
        on_full_batch()
    try:
        with db.session_scope() as session:
            applied = queries.complete_and_apply(session, lease)
        return Drained(len(lease.ids), applied, 0)
    except OperationalError:
        raise  # the database itself: the task retries, the lease brings the rows back
    except DBAPIError as error:
        log.warning(
            "webhook batch failed (%s); applying its events one by one", db.error_reason(error)
        )
    return _apply_one_by_one(lease)


def _apply_one_by_one(lease: queue.Lease) -> Drained:
    settings = get_settings()
    applied = failed = 0
    with db.session_scope() as session:
        for event_id in lease.ids:
            try:
                with session.begin_nested():
                    applied += queries.complete_and_apply(session, lease, [event_id])
            except OperationalError:
                raise
            except DBAPIError as error:
                failed += 1
                queue.mark_failed(
                    session,
                    queries.WEBHOOK_QUEUE,
                    lease,
                    event_id,
                    db.error_reason(error),
                    base=settings.retry_base_seconds,
                    cap=settings.retry_max_seconds,
                )
                log.warning("webhook event %s failed: %s", event_id, db.error_reason(error))
    return Drained(len(lease.ids), applied, failed)
