"""Celery entry points for the enrichment queue (seed: process-enrichment-queue).

One message carries a batch: a drain claims up to ENRICHMENT_BATCH_SIZE items and runs up to
ENRICHMENT_CONCURRENCY of them at once. A full batch sends the next drain before its work,
so every worker process helps while work remains. Whoever commits work for this queue (a
call that ended, a transcript that queued its analysis) asks for a drain, coalesced through
the drains.ENRICHMENT request key (app.drains); beat's tick catches retries that came due.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.exc import OperationalError

from app import drains
from app.celery import Queue, app, periodic_task
from app.config import get_settings
from app.enrichment import queries, service


@periodic_task("process-enrichment-queue")
def process_enrichment_queue() -> dict[str, Any]:
    """Beat's tick: start a drain if items are due (new ones, or retries whose time came)."""
    return drains.ENRICHMENT.tick(queries.count_due)


@app.task(
    name="enrichment.drain_enrichment_queue",
    queue=Queue.ENRICHMENT,
    autoretry_for=(OperationalError,),  # database blips only
    retry_backoff=True,
    max_retries=3,
)
def drain_enrichment_queue() -> dict[str, int]:
    """Fetch transcripts and analyse calls: one batch of due items."""
    drains.ENRICHMENT.forget()
    batch_size = get_settings().enrichment_batch_size
    drained = service.drain_batch(batch_size=batch_size, on_full_batch=drains.ENRICHMENT.send)
    if drained.transcripts and drained.claimed < batch_size:
        drains.ENRICHMENT.request()  # the transcripts just stored queued their analyses
    return asdict(drained)
