"""`callsync sync`: historical syncs of Ultravox calls."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import typer
from pydantic import ValidationError

from app.cli.options import AgencyId
from app.config import load_or_exit

JobId = Annotated[uuid.UUID, typer.Argument(help="The sync job's id.")]

group = typer.Typer(help="Historical syncs of Ultravox calls.", no_args_is_help=True)


@group.command("start")
def sync_start(
    agency: AgencyId,
    date_to: Annotated[datetime, typer.Option(help="End of the range (inclusive).")],
    date_from: Annotated[datetime | None, typer.Option(help="Start of the range.")] = None,
    max_calls: Annotated[int, typer.Option(help="Import at most this many calls.")] = 100,
    watch: Annotated[bool, typer.Option(help="Draw progress until the job ends.")] = True,
) -> None:
    """Start a historical sync for an agency (start-historical-sync)."""
    from app.ultravox import operations
    from app.ultravox.schemas import StartSync
    from app.validation import first_error

    load_or_exit()
    try:
        request = StartSync(date_from=date_from, date_to=date_to, max_calls=max_calls)
    except ValidationError as error:
        raise typer.BadParameter(first_error(error)) from error
    job_id = operations.start(agency, request).id
    typer.echo(f"sync job {job_id} started")
    if watch:
        operations.watch(job_id)


@group.command("status")
def sync_status(
    job: JobId,
    watch: Annotated[bool, typer.Option(help="Keep drawing until the job ends.")] = False,
) -> None:
    """Show a sync job's progress (get-sync-status)."""
    from app.ultravox import operations

    load_or_exit()
    operations.watch(job, follow=watch)


@group.command("cancel")
def sync_cancel(job: JobId) -> None:
    """Cancel a sync job; a page in flight finishes first (cancel-historical-sync)."""
    from app.ultravox import operations

    load_or_exit()
    typer.echo(f"sync job {job} is {operations.cancel(job)}")
