"""What `callsync queue stats` and `/metrics` show: every queue table's pending, processing and
failed rows, the age of its oldest pending row, its dead rows, an estimate of its completed
rows, and the sync jobs in flight.

Both run often against tables of millions of completed rows, so nothing here reads the whole
table: the exact figures come from the small statuses alone, through an index on status
(alembic 0001 and 0011), and the completed rows, the bulk of a table, are estimated from the
planner's statistics: the table's live rows (pg_class.reltuples per page, times its pages now)
less the exact figures. Autovacuum refreshes those statistics; `ANALYZE <table>` does at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from rich.table import Column, Table
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import pauses
from app.config import get_settings

# table: how its rows say "dead" (failed with no tries left)
QUEUES = {
    "webhook_queue": "attempts >= max_attempts",
    "enrichment_queue": "attempts >= max_attempts",
    "sync_queue": "retry_count >= max_retries",
}
STATUSES = ("pending", "processing", "failed")  # counted exactly; "completed" is estimated
# table: the provider whose credentials its work needs
PROVIDERS = {"enrichment_queue": pauses.ULTRAVOX, "sync_queue": pauses.BUBBLE}

# The planner's own row estimate: rows per page at the last ANALYZE, times the pages now.
LIVE_ROWS_ESTIMATE = """
    SELECT CASE WHEN relpages > 0
                THEN reltuples / relpages * (pg_relation_size(oid) / current_setting('block_size')::int)
                ELSE greatest(reltuples, 0) END
    FROM pg_class WHERE oid = CAST(:table AS regclass)"""


@dataclass(frozen=True)
class QueueStats:
    name: str
    counts: dict[str, int]  # exact, by status in STATUSES
    oldest_pending: timedelta | None
    dead: int
    worker_lost: int  # of the dead: their worker died with them MAX_LOST_RUNS times
    completed_estimate: int
    # Whose work in it waits for the provider's credentials (app.pauses), and why.
    needs_credentials: tuple[pauses.Pause, ...] = field(default=())


def queue_stats(session: Session) -> list[QueueStats]:
    waiting = pauses.all_pauses(session)
    return [
        _table_stats(
            session, table, dead, [p for p in waiting if p.provider == PROVIDERS.get(table)]
        )
        for table, dead in QUEUES.items()
    ]


def _table_stats(
    session: Session, table: str, dead: str, waiting: list[pauses.Pause]
) -> QueueStats:
    counts = ", ".join(f"count(*) FILTER (WHERE status = '{s}')" for s in STATUSES)
    listed = ", ".join(f"'{s}'" for s in STATUSES)
    row = session.execute(
        text(f"""SELECT {counts},
                        now() - min(created_at) FILTER (WHERE status = 'pending'),
                        count(*) FILTER (WHERE status = 'failed' AND {dead}),
                        ({LIVE_ROWS_ESTIMATE}),
                        count(*) FILTER (
                            WHERE status = 'failed' AND {dead} AND lost_runs >= :max_lost_runs
                        )
                 FROM {table} WHERE status IN ({listed})"""),  # noqa: S608 (the constants above)
        {"table": table, "max_lost_runs": get_settings().max_lost_runs},
    ).one()
    exact = dict(zip(STATUSES, row[:3], strict=True))
    live = round(row[5] or 0)
    completed = max(0, live - sum(exact.values()))
    return QueueStats(table, exact, row[3], row[4], row[6], completed, tuple(waiting))


def refresh_estimates(session: Session) -> None:
    """ANALYZE the queue tables (a sample of 30,000 rows each), so the estimates are as of now."""
    session.execute(text(f"ANALYZE {', '.join(QUEUES)}"))


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
    table = Table(
        Column("queue", no_wrap=True),
        *STATUSES,
        "dead",
        "worker\nlost",
        Column("oldest\npending", no_wrap=True, min_width=8),
        "completed",
        pauses.NEEDS_CREDENTIALS,
        caption="\n".join(
            ["~ an estimate, from the planner's statistics"]
            + [
                f"{pauses.NEEDS_CREDENTIALS}: {row.name}, {p.provider} work of {p.scope} since "
                f"{p.since:%Y-%m-%d %H:%M}: {p.reason}"
                for row in stats
                for p in row.needs_credentials
            ]
        ),
        pad_edge=False,
    )
    for row in stats:
        age = "-" if row.oldest_pending is None else str(row.oldest_pending).split(".")[0]
        table.add_row(
            row.name,
            *(str(row.counts[s]) for s in STATUSES),
            str(row.dead),
            str(row.worker_lost),
            age,
            f"~{row.completed_estimate}",
            str(len(row.needs_credentials)),
        )
    return table
