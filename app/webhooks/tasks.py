"""Celery entry points for the webhook queue (seed: process-webhook-queue).

One message carries a whole batch: a drain claims up to WEBHOOK_BATCH_SIZE events, and when
the batch was full it sends the next drain before applying, so every worker process helps
while work remains. webhook-ingest wakes a drain after each commit, coalesced through the
drains.WEBHOOKS request key (app.drains).
"""

from __future__ import annotations

from app import drains
from app.webhooks import queries, service


def _wake_enrichment(drained: drains.Drained) -> None:
    if drained.done["applied"]:
        drains.ENRICHMENT.request()  # a call.ended queues the call's transcript


# webhooks.drain_webhook_queue applies one batch of due events to their calls.
process_webhook_queue, drain_webhook_queue = drains.WEBHOOKS.tasks(
    "process-webhook-queue", queries.count_due, service.drain_batch, then=_wake_enrichment
)
