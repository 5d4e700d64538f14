"""Starting, cancelling and watching historical syncs, for the API and `callsync sync`."""

from __future__ import annotations

import logging
import time
import uuid

from kombu.exceptions import OperationalError as BrokerError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import db, errors
from app.models import Agency, HistoricalSyncJob, SyncJobStatus
from app.ultravox import queries, tasks
from app.ultravox.schemas import StartSync

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
FINISHED = (SyncJobStatus.completed, SyncJobStatus.failed, SyncJobStatus.cancelled)


class ActiveJobExists(errors.Conflict):
    """The agency already has a pending or in-progress sync job."""


def start(agency_id: uuid.UUID, request: StartSync) -> HistoricalSyncJob:
    """start-historical-sync: create the job, commit, then send its first page."""
    try:
        with db.session_scope() as session:
            if session.get(Agency, agency_id) is None:
                raise errors.NotFound(f"no agency {agency_id}")
            job = queries.create_sync_job(session, agency_id, request)
    except IntegrityError as error:
        if "uq_sync_jobs_one_active" not in str(error.orig):
            raise
        raise ActiveJobExists(f"agency {agency_id} already has an active sync job") from error
    try:
        tasks.process_sync_page.delay(str(job.id), None)
    except BrokerError:
        # The job is committed: process-historical-sync claims it on its next tick.
        log.warning("broker unavailable; sync job %s waits for the next claim", job.id)
    return job


def cancel(job_id: uuid.UUID) -> str:
    """Cancel the job; returns its new status."""
    with db.session_scope() as session:
        job = _load(session, job_id)
        try:
            return queries.cancel_sync_job(session, job).status.value
        except queries.NotCancellable:
            raise


def watch(job_id: uuid.UUID, *, follow: bool = True) -> None:
    """Draw the job's progress bar; with `follow`, until the job ends."""
    console = Console()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "imported {task.fields[imported]}, skipped {task.fields[skipped]}, "
            "failed {task.fields[failed]}"
        ),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("pending", total=None, imported=0, skipped=0, failed=0)
        while True:
            job = snapshot(job_id)
            progress.update(
                bar,
                description=job.status.value,
                completed=job.processed_calls,
                total=job.total_calls,
                imported=job.imported_calls,
                skipped=job.skipped_calls,
                failed=job.failed_calls,
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
        raise errors.NotFound(f"no sync job {job_id}")
    return job
