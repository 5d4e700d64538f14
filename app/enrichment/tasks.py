"""Celery entry points for the enrichment queue (seed: process-enrichment-queue).

One message carries a batch: a drain claims up to ENRICHMENT_BATCH_SIZE items and runs up to
ENRICHMENT_CONCURRENCY of them at once. A full batch sends the next drain before its work,
so every worker process helps while work remains. Whoever commits work for this queue (a
call that ended, a transcript that queued its analysis) asks for a drain, coalesced through
the drains.ENRICHMENT request key (app.drains); beat's tick catches retries that came due.
"""

from __future__ import annotations

from collections.abc import Callable

from app import drains
from app.enrichment import queries, service


def _wake_analyses() -> None:
    """Transcripts just stored queued their analyses: a drain for them, while the batch that
    stored them goes on (coalesced, so a batch's many groups ask for one drain)."""
    drains.ENRICHMENT.request()


def _drain_batch(*, batch_size: int, on_full_batch: Callable[[], object]) -> drains.Drained:
    return service.drain_batch(
        batch_size=batch_size, on_full_batch=on_full_batch, on_transcripts=_wake_analyses
    )


# enrichment.drain_enrichment_queue fetches transcripts and analyses calls: one batch of items.
process_enrichment_queue, drain_enrichment_queue = drains.ENRICHMENT.tasks(
    "process-enrichment-queue", queries.count_due, _drain_batch
)
