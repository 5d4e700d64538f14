"""Celery entry points for the enrichment queue (seed: process-enrichment-queue).

One message carries a batch: a drain claims up to ENRICHMENT_BATCH_SIZE items and runs up to
ENRICHMENT_CONCURRENCY of them at once. A full batch sends the next drain before its work,
so every worker process helps while work remains. Whoever commits work for this queue (a
call that ended, a transcript that queued its analysis) asks for a drain, coalesced through
the drains.ENRICHMENT request key (app.drains); beat's tick catches retries that came due.
"""

from __future__ import annotations

from app import drains
from app.config import get_settings
from app.enrichment import queries, service


def _drain_again(drained: drains.Drained) -> None:
    """The transcripts a batch stored queued their analyses; a full batch sent a drain."""
    batch_size = drains.ENRICHMENT.batch_size(get_settings())
    if drained.done["transcripts"] and drained.claimed < batch_size:
        drains.ENRICHMENT.request()


# enrichment.drain_enrichment_queue fetches transcripts and analyses calls: one batch of items.
process_enrichment_queue, drain_enrichment_queue = drains.ENRICHMENT.tasks(
    "process-enrichment-queue", queries.count_due, service.drain_batch, then=_drain_again
)
