"""Celery entry points for the webhook queue (seed: process-webhook-queue).

One message carries a whole batch: a drain claims up to WEBHOOK_BATCH_SIZE events, and when
the batch was full it sends the next drain before applying, so every worker process helps
while work remains. webhook-ingest wakes a drain after each commit, coalesced through the
DRAIN_REQUESTED key: it is set when a drain is sent and deleted when that drain starts, so
while one is waiting to start no other is sent, and an event committed before the key was
seen is always claimed by the drain that key stands for.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import lru_cache
from typing import Any

from redis import Redis
from sqlalchemy.exc import OperationalError

from app import db
from app.celery import Queue, app, periodic_task
from app.config import get_settings
from app.webhooks import queries, service

log = logging.getLogger(__name__)

DRAIN_REQUESTED = "callsync:webhooks:drain-requested"
# A drain lost with its message is replaced after this long, or by beat's next tick.
DRAIN_REQUEST_TTL_MS = 10_000


@lru_cache
def _redis() -> Redis:
    return Redis.from_url(get_settings().redis_url)


@periodic_task("process-webhook-queue")
def process_webhook_queue() -> dict[str, Any]:
    """Beat's tick: start a drain if events are due (new ones, or retries whose time came)."""
    lease = timedelta(seconds=get_settings().lease_seconds)
    with db.session_scope() as session:
        due = queries.count_due(session, lease=lease)
    if due:
        drain_webhook_queue.delay()
    return {"due": due, "drain_sent": bool(due)}


@app.task(
    name="webhooks.drain_webhook_queue",
    queue=Queue.WEBHOOKS,
    autoretry_for=(OperationalError,),  # database blips only
    retry_backoff=True,
    max_retries=3,
)
def drain_webhook_queue() -> dict[str, int]:
    """Apply one batch of due events to their calls."""
    forget_drain_request()
    drained = service.drain_batch(
        batch_size=get_settings().webhook_batch_size, on_full_batch=drain_webhook_queue.delay
    )
    return {"claimed": drained.claimed, "applied": drained.applied, "failed": drained.failed}


def request_drain() -> None:
    """Send a drain unless one is already waiting to start."""
    if _redis().set(DRAIN_REQUESTED, 1, nx=True, px=DRAIN_REQUEST_TTL_MS):
        drain_webhook_queue.delay()


def forget_drain_request() -> None:
    """Drop the pending-drain mark, after purging the broker of the drain it stood for."""
    _redis().delete(DRAIN_REQUESTED)


async def send_drain_async() -> None:
    """Publish a drain from async code; kombu's publish blocks, so it runs in a thread."""
    await asyncio.to_thread(drain_webhook_queue.delay)
