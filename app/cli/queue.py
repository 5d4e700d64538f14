"""`callsync queue`: the work queues."""

from __future__ import annotations

from typing import Annotated

import typer

from app.config import load_or_exit

group = typer.Typer(help="The work queues.", no_args_is_help=True)


@group.command("stats")
def queue_stats(
    analyze: Annotated[
        bool, typer.Option(help="ANALYZE the queue tables first, for a fresh completed estimate.")
    ] = False,
) -> None:
    """Rows per queue and status, the oldest pending row's age, dead rows, jobs in flight."""
    from rich.console import Console

    from app import db
    from app.queue_stats import as_table, jobs_in_flight, refresh_estimates
    from app.queue_stats import queue_stats as read_stats

    load_or_exit()
    with db.session_scope() as session:
        if analyze:
            refresh_estimates(session)
        stats, jobs = read_stats(session), jobs_in_flight(session)
    console = Console()
    console.print(as_table(stats))
    console.print(f"historical sync jobs in flight: {jobs}")
