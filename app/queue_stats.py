"""What `callsync queue stats` shows: every queue table's rows by status, the age of its oldest
pending row, its dead rows, and the sync jobs in flight."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from rich.table import Table
from sqlalchemy import text
from sqlalchemy.orm import Session

# table: how its rows say "dead" (failed with no tries left)
QUEUES = {
    "webhook_queue": "attempts >= max_attempts",
    "enrichment_queue": "attempts >= max_attempts",
    "sync_queue": "retry_count >= max_retries",
}
STATUSES = ("pending", "processing", "completed", "failed")


@dataclass(frozen=True)
class QueueStats:
    name: str
    counts: dict[str, int]
    oldest_pending: timedelta | None
    dead: int


def queue_stats(session: Session) -> list[QueueStats]:
    stats = []
    for table, dead in QUEUES.items():
        row = session.execute(
            text(f"""SELECT {", ".join(f"count(*) FILTER (WHERE status = '{s}')" for s in STATUSES)},
                            now() - min(created_at) FILTER (WHERE status = 'pending'),
                            count(*) FILTER (WHERE status = 'failed' AND {dead})
                     FROM {table}""")  # noqa: S608 (the names are the constants above)
        ).one()
        stats.append(QueueStats(table, dict(zip(STATUSES, row[:4], strict=True)), row[4], row[5]))
    return stats


def jobs_in_flight(session: Session) -> int:
    """Historical sync jobs pending or in progress."""
    return (
        session.scalar(
            text(
                "SELECT count(*) FROM historical_sync_jobs WHERE status IN ('pending', 'in_progress')"
            )
        )
        or 0
    )


def as_table(stats: list[QueueStats]) -> Table:
    table = Table("queue", *STATUSES, "oldest pending", "dead")
    for row in stats:
        age = "-" if row.oldest_pending is None else str(row.oldest_pending).split(".")[0]
        table.add_row(row.name, *(str(row.counts[s]) for s in STATUSES), age, str(row.dead))
    return table
