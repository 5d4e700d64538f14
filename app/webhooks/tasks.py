"""Celery entry points for the webhook queue (seed: process-webhook-queue).

One message carries a whole batch: a drain claims up to WEBHOOK_BATCH_SIZE events, and when
the batch was full it sends the next drain before applying, so every worker process helps
while work remains. webhook-ingest wakes a drain after each commit, coalesced through the
drains.WEBHOOKS request key (app.drains).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import OperationalError

from app import drains
from app.celery import Queue, app, periodic_task
from app.config import get_settings
from app.webhooks import queries, service


@periodic_task("process-webhook-queue")
def process_webhook_queue() -> dict[str, Any]:
    """Beat's tick: start a drain if events are due (new ones, or retries whose time came)."""
    return drains.WEBHOOKS.tick(queries.count_due)


@app.task(
    name="webhooks.drain_webhook_queue",
    queue=Queue.WEBHOOKS,
    autoretry_for=(OperationalError,),  # database blips only
    retry_backoff=True,
    max_retries=3,
)
def drain_webhook_queue() -> dict[str, int]:
    """Apply one batch of due events to their calls."""
    drains.WEBHOOKS.forget()
    drained = service.drain_batch(
        batch_size=get_settings().webhook_batch_size, on_full_batch=drains.WEBHOOKS.send
    )
    if drained.applied:
        drains.ENRICHMENT.request()  # a call.ended queues the call's transcript
    return {"claimed": drained.claimed, "applied": drained.applied, "failed": drained.failed}
