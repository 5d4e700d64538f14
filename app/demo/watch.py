"""The demo's live progress bars, and its summary."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import text

from app import db, queue_stats

POLL_SECONDS = 0.5

# Each figure is (done, total) for the demo's agency, business and sync job.
FIGURES = {
    # A job that stopped at max_calls has read all it will.
    "historical sync: calls read": "SELECT processed_calls, CASE WHEN status IN ('completed',"
    " 'failed', 'cancelled') THEN processed_calls ELSE total_calls END"
    " FROM historical_sync_jobs WHERE id = :job",
    "webhook events applied": "SELECT count(*) FILTER (WHERE status = 'completed'), count(*)"
    " FROM webhook_queue WHERE agency_id = :agency",
    "transcripts": "SELECT count(transcript_fetched_at), count(ended) FROM calls"
    " WHERE agency_id = :agency",
    "analyses": "SELECT count(analysis), count(ended) FROM calls WHERE agency_id = :agency",
    "Salesforce leads synced": "SELECT (SELECT count(*) FROM leads WHERE business_id = :business),"
    " sum(records_created + records_updated) FROM sync_logs WHERE business_id = :business",
    # One conversation per enrolled lead once its call is placed; each ends done or failed.
    "calls placed": "SELECT (SELECT count(*) FROM conversations WHERE business_id = :business),"
    " count(*) FROM campaign_leads JOIN campaigns c ON c.id = campaign_id"
    " WHERE c.business_id = :business",
    "conversations finished": "SELECT count(*) FILTER (WHERE status IN ('done', 'failed')),"
    " count(*) FROM conversations WHERE business_id = :business",
    "signups pushed to Bubble": "SELECT count(*) FILTER (WHERE status = 'completed'), count(*)"
    " FROM sync_queue WHERE record_id = CAST(:business AS text)",
}


@dataclass(frozen=True)
class Figure:
    done: int
    total: int | None

    @property
    def settled(self) -> bool:
        return self.total is not None and self.done >= self.total


def figures(params: dict[str, uuid.UUID]) -> dict[str, Figure]:
    with db.session_scope() as session:
        rows = {label: session.execute(text(sql), params).one() for label, sql in FIGURES.items()}
    return {label: Figure(int(done or 0), total) for label, (done, total) in rows.items()}


class Watch:
    """Progress bars of every figure, redrawn until a condition holds."""

    def __init__(self, console: Console, params: dict[str, uuid.UUID]) -> None:
        self.params = params
        self.progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.bars = {label: self.progress.add_task(label, total=None) for label in FIGURES}

    def until(
        self,
        done: Callable[[dict[str, Figure]], bool],
        *,
        timeout: float,
        nudge: Callable[[], object] = lambda: None,
    ) -> dict[str, Figure]:
        """Redraw until `done(figures)`; call `nudge` between polls. Gives up after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            now = figures(self.params)
            for label, figure in now.items():
                self.progress.update(self.bars[label], completed=figure.done, total=figure.total)
            if done(now) or time.monotonic() > deadline:
                return now
            nudge()
            time.sleep(POLL_SECONDS)


def summary(console: Console, final: dict[str, Figure], job: dict[str, Any]) -> None:
    table = Table(title="What happened")
    table.add_column("what")
    table.add_column("done", justify="right")
    table.add_column("of", justify="right")
    for label, figure in final.items():
        mark = "" if figure.settled else " [yellow](unfinished)[/yellow]"
        table.add_row(label + mark, str(figure.done), str(figure.total or "-"))
    console.print(table)
    console.print(
        f"historical sync {job['status']}: {job['imported_calls']} calls imported, "
        f"{job['skipped_calls']} skipped (live, or stored already)"
    )
    with db.session_scope() as session:
        queue_stats.refresh_estimates(session)  # the rows just completed, counted in
        console.print(queue_stats.as_table(queue_stats.queue_stats(session)))
