"""Celery entry points for the Bubble sync queue (seed 004: bubble-sync-processor and
bubble-sync-retry, both run by the bubble_sync function)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import db, pauses, queue
from app.bubble import queries, service
from app.celery import Queue, app, periodic_task
from app.config import get_settings

log = logging.getLogger("bubble_sync")

CLAIM_LIMIT = 10  # seed 004: payload.limit
BATCH_SIZE = 5  # seed 004: payload.batch_size


@periodic_task("bubble-sync-processor")
def bubble_sync_processor(limit: int = CLAIM_LIMIT, batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Claim pending items (each after its record's earlier ones); push them in batches."""
    lease = timedelta(seconds=get_settings().lease_seconds)
    with db.session_scope() as session:
        if (waiting := _paused(session)) is not None:
            return waiting
        claimed = queries.claim_pending(session, limit=limit, lease=lease)
    if claimed.alone:  # an item a dead worker held, claimed alone: others may wait behind it
        bubble_sync_processor.delay(limit, batch_size)
    return _dispatch(claimed, batch_size, "pending")


@periodic_task("bubble-sync-retry")
def bubble_sync_retry(limit: int = CLAIM_LIMIT, batch_size: int = BATCH_SIZE) -> dict[str, Any]:
    """Claim failed items with retries left whose backoff has passed; push them again."""
    with db.session_scope() as session:
        if (waiting := _paused(session)) is not None:
            return waiting
        claimed = queries.claim_retries(session, limit=limit)
    return _dispatch(claimed, batch_size, "failed")


def _paused(session: Session) -> dict[str, Any] | None:
    """When Bubble's work waits for credentials, nothing is claimed: the items stay as they
    are. A pause for other credentials than this process's is lifted."""
    credential = service.credential()
    pauses.resume_other_credentials(session, pauses.BUBBLE, credential)
    reason = pauses.paused_for_everyone(session, pauses.BUBBLE, credential)
    return None if reason is None else {"claimed": 0, pauses.NEEDS_CREDENTIALS: reason}


def _dispatch(claimed: queue.Lease, batch_size: int, kind: str) -> dict[str, Any]:
    ids = claimed.ids
    log.info("[bubble_sync] claimed %d %s item(s)", len(ids), kind)
    if claimed.leased_at is not None:
        leased_at = claimed.leased_at.isoformat()
        for first in range(0, len(ids), batch_size):
            push_items.delay(
                [str(item_id) for item_id in ids[first : first + batch_size]], leased_at
            )
    return {"claimed": len(ids), "batches": -(-len(ids) // batch_size)}


@app.task(
    name="bubble.push_items",
    queue=Queue.SYNC,
    autoretry_for=(OperationalError,),  # database blips only; the lease brings items back
    retry_backoff=True,
    max_retries=3,
)
def push_items(item_ids: list[str], leased_at: str) -> dict[str, int]:
    """Push a batch of claimed items to Bubble, one after another."""
    when = datetime.fromisoformat(leased_at)
    ids = [uuid.UUID(item_id) for item_id in item_ids]
    with db.session_scope() as session:
        queries.hold(session, ids, when)
    outcomes = [service.process_item(item_id, when) for item_id in ids]
    return {outcome: outcomes.count(outcome) for outcome in set(outcomes)}
