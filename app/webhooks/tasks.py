"""Celery entry points for the webhook queue (seed: process-webhook-queue).

One message carries a whole batch: a drain claims up to WEBHOOK_BATCH_SIZE events, and when
the batch was full it sends the next drain before applying, so every worker process helps
while work remains. webhook-ingest wakes a drain after each commit, coalesced through the
DRAIN_REQUESTED key (app.drains).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.exc import OperationalError

from app import drains
from app.celery import Queue, app, periodic_task
from app.config import get_settings
from app.enrichment import tasks as enrichment_tasks
from app.webhooks import queries, service

DRAIN_REQUESTED = "callsync:webhooks:drain-requested"


@periodic_task("process-webhook-queue")
def process_webhook_queue() -> dict[str, Any]:
    """Beat's tick: start a drain if events are due (new ones, or retries whose time came)."""
    return drains.tick(queries.count_due, drain_webhook_queue.delay)


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
    if drained.applied:
        enrichment_tasks.request_drain()  # a call.ended queues the call's transcript
    return {"claimed": drained.claimed, "applied": drained.applied, "failed": drained.failed}


def request_drain() -> None:
    """Send a drain unless one is already waiting to start."""
    drains.request(DRAIN_REQUESTED, drain_webhook_queue.delay)


def forget_drain_request() -> None:
    """Drop the pending-drain mark: its drain is starting (or the broker was purged)."""
    drains.forget(DRAIN_REQUESTED)


async def send_drain_async() -> None:
    """Publish a drain from async code; kombu's publish blocks, so it runs in a thread."""
    await asyncio.to_thread(drain_webhook_queue.delay)
