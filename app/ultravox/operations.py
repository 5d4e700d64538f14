"""`callsync sync start|status|cancel`: the operator's view of historical syncs."""

from __future__ import annotations

import time
import uuid

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import db
from app.models import Agency, HistoricalSyncJob, SyncJobStatus
from app.ultravox import queries
from app.ultravox.schemas import StartSync

POLL_SECONDS = 0.5
FINISHED = (SyncJobStatus.completed, SyncJobStatus.failed, SyncJobStatus.cancelled)


def start(agency_id: uuid.UUID, request: StartSync) -> uuid.UUID:
    """Create the job, commit, then send its first page (start-historical-sync)."""
    from app.ultravox import tasks

    try:
        with db.session_scope() as session:
            if session.get(Agency, agency_id) is None:
                raise LookupError(f"no agency {agency_id}")
            job_id = queries.create_sync_job(session, agency_id, request).id
    except IntegrityError as error:
        raise LookupError(f"agency {agency_id} already has an active sync job") from error
    tasks.process_sync_page.delay(str(job_id), None)
    return job_id


def cancel(job_id: uuid.UUID) -> str:
    """Cancel the job; returns its new status."""
    with db.session_scope() as session:
        job = _load(session, job_id)
        try:
            return queries.cancel_sync_job(session, job).status.value
        except queries.NotCancellable as error:
            raise LookupError(str(error)) from error


def watch(job_id: uuid.UUID, *, follow: bool = True) -> None:
    """Draw the job's progress bar; with `follow`, until the job ends."""
    console = Console()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("imported {task.fields[imported]}, skipped {task.fields[skipped]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("pending", total=None, imported=0, skipped=0)
        while True:
            job = snapshot(job_id)
            progress.update(
                bar,
                description=job.status.value,
                completed=job.processed_calls,
                total=job.total_calls,
                imported=job.imported_calls,
                skipped=job.skipped_calls,
            )
            if not follow or job.status in FINISHED:
                break
            time.sleep(POLL_SECONDS)
    if job.error_message:
        console.print(f"[red]error:[/red] {job.error_message}")


def snapshot(job_id: uuid.UUID) -> HistoricalSyncJob:
    with db.session_scope() as session:
        return _load(session, job_id)


def _load(session: Session, job_id: uuid.UUID) -> HistoricalSyncJob:
    job = session.scalars(select(HistoricalSyncJob).where(HistoricalSyncJob.id == job_id)).first()
    if job is None:
        raise LookupError(f"no sync job {job_id}")
    return job
