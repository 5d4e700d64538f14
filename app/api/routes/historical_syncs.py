"""start-historical-sync, get-sync-status and cancel-historical-sync (seed 000's companions)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy.orm import Session

from app import pauses
from app.api.deps import AdminDep, CallerDep, SessionDep
from app.models import HistoricalSyncJob
from app.ultravox import operations, queries
from app.ultravox.schemas import StartSync, SyncJobOut, SyncJobPage

router = APIRouter(prefix="/api/historical-syncs", tags=["historical syncs"])


@router.post("", status_code=status.HTTP_201_CREATED)
def start_historical_sync(body: StartSync, caller: AdminDep) -> SyncJobOut:
    """Create a pending job for the caller's agency and send its first page at once."""
    try:
        job = operations.start(caller.agency_id, body)
    except operations.ActiveJobExists as error:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "this agency already has an active sync job"
        ) from error
    return SyncJobOut.model_validate(job)


@router.get("")
def list_historical_syncs(
    session: SessionDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SyncJobPage:
    """The agency's jobs, active and recent, newest first; `needs_credentials` as for one job."""
    jobs, total = queries.list_sync_jobs(session, caller.agency_id, limit=limit, offset=offset)
    waiting = pauses.reason_for(session, pauses.ULTRAVOX, caller.agency_id)
    return SyncJobPage(
        jobs=[
            SyncJobOut.model_validate(job).model_copy(update={"needs_credentials": waiting})
            for job in jobs
        ],
        limit=limit,
        offset=offset,
        total=total,
    )


@router.get("/{job_id}")
def get_historical_sync(job_id: uuid.UUID, session: SessionDep, caller: CallerDep) -> SyncJobOut:
    """The job, and why the agency's Ultravox work waits, if it does (`needs_credentials`)."""
    job = SyncJobOut.model_validate(_get_job(session, caller.agency_id, job_id))
    job.needs_credentials = pauses.reason_for(session, pauses.ULTRAVOX, caller.agency_id)
    return job


@router.post("/{job_id}/cancel")
def cancel_historical_sync(job_id: uuid.UUID, session: SessionDep, caller: AdminDep) -> SyncJobOut:
    """Stop a job: a page in flight still lands, then no next page is sent."""
    job = _get_job(session, caller.agency_id, job_id)
    try:
        job = queries.cancel_sync_job(session, job)
    except queries.NotCancellable as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    session.commit()
    return SyncJobOut.model_validate(job)


def _get_job(session: Session, agency_id: uuid.UUID, job_id: uuid.UUID) -> HistoricalSyncJob:
    job = queries.get_sync_job(session, agency_id, job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "sync job not found")
    return job
