"""cleanup (ours, daily): delete completed queue rows and logs past RETENTION_DAYS.

Each table is pruned in batches of CLEANUP_BATCH_SIZE, one transaction each, so no long
transaction holds back vacuum; every batch follows the table's index on its age.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text

from app import db
from app.celery import periodic_task
from app.config import get_settings

# table: the rows that may go, given :cutoff (each condition matches a partial or age index)
PRUNABLE = {
    "webhook_queue": "status = 'completed' AND processed_at < :cutoff",  # idx_webhook_queue_processed
    "enrichment_queue": "status = 'completed' AND processed_at < :cutoff",  # ..._processed
    "sync_queue": "status = 'completed' AND processed_at < :cutoff",  # idx_sync_queue_processed
    "webhook_logs": "received_at < :cutoff",  # idx_webhook_logs_received
    "cron_job_logs": "started_at < :cutoff",  # idx_cron_job_logs_started_at
}


@periodic_task("cleanup")
def cleanup() -> dict[str, Any]:
    """Delete what is past retention, table by table, batch by batch; returns the counts."""
    settings = get_settings()
    retention = timedelta(days=settings.retention_days)
    return {
        table: prune(table, retention=retention, batch=settings.cleanup_batch_size)
        for table in PRUNABLE
    }


def prune(table: str, *, retention: timedelta, batch: int) -> int:
    """Delete `table`'s prunable rows older than `retention`, `batch` per transaction."""
    delete = text(
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("  # noqa: S608 (PRUNABLE's constants)
        f"SELECT ctid FROM {table} WHERE {PRUNABLE[table]} LIMIT :batch))"
    )
    with db.session_scope() as session:  # the database's clock, read once
        cutoff = session.scalar(select(func.now() - retention))
    deleted = 0
    while True:
        with db.session_scope() as session:
            count: int = session.execute(delete, {"cutoff": cutoff, "batch": batch}).rowcount  # type: ignore[attr-defined]
        deleted += count
        if count < batch:
            return deleted
