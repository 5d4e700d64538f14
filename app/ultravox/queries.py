"""SQL for historical sync jobs: the seed RPCs, typed, and the API's reads and writes.

Nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select, text, update
from sqlalchemy.orm import Session

from app import errors, liveness, metrics
from app.models import Agency, HistoricalSyncJob, SyncJobStatus
from app.ultravox.schemas import StartSync

ACTIVE = (SyncJobStatus.pending, SyncJobStatus.in_progress)


class NotCancellable(errors.Conflict):
    """The job already finished: completed, failed or cancelled."""


def claim_sync_jobs(session: Session, *, limit: int, lease_seconds: int) -> list[Row[Any]]:
    """claim_sync_jobs_batch: up to `limit` jobs, oldest first, pending or with nobody running
    them (their worker is gone, or their next page has not started for `lease_seconds`);
    rows of (id, cursor, lost_runs)."""
    stmt = text("SELECT id, cursor, lost_runs FROM claim_sync_jobs_batch(:limit, :lease)")
    with metrics.timed_claim("historical_sync_jobs"):
        return list(session.execute(stmt, {"limit": limit, "lease": lease_seconds}))


def start_page(session: Session, job_id: uuid.UUID, cursor: str | None) -> HistoricalSyncJob | None:
    """Hold an active job still waiting at `cursor` (this worker runs it now); None for a
    stale task."""
    stmt = (
        update(HistoricalSyncJob)
        .where(
            HistoricalSyncJob.id == job_id,
            HistoricalSyncJob.status.in_(ACTIVE),
            HistoricalSyncJob.cursor.is_not_distinct_from(cursor),
        )
        .values(
            status=SyncJobStatus.in_progress,
            started_at=func.coalesce(HistoricalSyncJob.started_at, func.now()),
            last_activity_at=func.now(),
            worker_id=liveness.holder(),
        )
        .returning(HistoricalSyncJob)
    )
    return session.scalars(stmt).one_or_none()


def hand_off(session: Session, job_id: uuid.UUID) -> None:
    """The job's next page is in the broker, run by nobody yet: claim_sync_jobs_batch sends
    it again if it has not started in time (its message may have gone with a dead worker)."""
    stmt = update(HistoricalSyncJob).where(HistoricalSyncJob.id == job_id).values(worker_id=None)
    session.execute(stmt)


def get_encrypted_api_key(session: Session, agency_id: uuid.UUID) -> bytes | None:
    return session.scalar(select(Agency.ultravox_api_key_encrypted).where(Agency.id == agency_id))


def lock_job_at_cursor(
    session: Session, job_id: uuid.UUID, cursor: str | None
) -> SyncJobStatus | None:
    """Lock the job if it still waits for the page at `cursor`; returns its status.

    A duplicate page task (a redelivered message, or a re-claim racing a slow worker) finds
    the cursor moved on and gets None, so every page is counted once.
    """
    stmt = (
        select(HistoricalSyncJob.status)
        .where(
            HistoricalSyncJob.id == job_id,
            HistoricalSyncJob.cursor.is_not_distinct_from(cursor),
            HistoricalSyncJob.status.in_([SyncJobStatus.in_progress, SyncJobStatus.cancelled]),
        )
        .with_for_update()
    )
    return session.scalar(stmt)


def upsert_calls(session: Session, agency_id: uuid.UUID, calls: Sequence[dict[str, Any]]) -> int:
    """upsert_call_from_sync for a whole page in one round trip; returns how many were new."""
    stmt = text(
        "SELECT count(*) FILTER (WHERE inserted) "
        "FROM upsert_call_from_sync(:agency_id, CAST(:calls AS jsonb))"
    )
    inserted = session.scalar(stmt, {"agency_id": agency_id, "calls": json.dumps(calls)})
    return int(inserted or 0)


def upsert_ended_calls(session: Session, agency_id: uuid.UUID, pages: Sequence[bytes]) -> int:
    """upsert_call_from_sync for the ended calls of whole pages of `GET /api/calls`, as they
    came, in one round trip; returns how many were new."""
    stmt = text(
        "SELECT count(*) FILTER (WHERE inserted) FROM upsert_call_from_sync(:agency_id, "
        "  jsonb_path_query_array(CAST(:pages AS jsonb), '$[*].results[*] ? (@.ended != null)'))"
    )
    pages_json = b"[" + b",".join(pages) + b"]"
    inserted = session.scalar(stmt, {"agency_id": agency_id, "pages": pages_json.decode()})
    return int(inserted or 0)


def update_sync_job_progress(
    session: Session,
    job_id: uuid.UUID,
    *,
    cursor: str | None,
    processed: int,
    imported: int,
    skipped: int,
    failed: int,
    total: int | None,
) -> Row[Any]:
    """Add one page's counts and move the cursor; returns the job's new totals."""
    stmt = text(
        "SELECT imported_calls, processed_calls, total_calls FROM update_sync_job_progress("
        ":job_id, :cursor, :processed, :imported, :skipped, :failed, :total)"
    )
    params = {
        "job_id": job_id,
        "cursor": cursor,
        "processed": processed,
        "imported": imported,
        "skipped": skipped,
        "failed": failed,
        "total": total,
    }
    return session.execute(stmt, params).one()


def complete_sync_job(session: Session, job_id: uuid.UUID) -> None:
    session.execute(select(func.complete_sync_job(job_id)))


def fail_sync_job(session: Session, job_id: uuid.UUID, error: str) -> None:
    session.execute(select(func.fail_sync_job(job_id, error)))


def create_sync_job(
    session: Session, agency_id: uuid.UUID, request: StartSync
) -> HistoricalSyncJob:
    """A new pending job; raises IntegrityError (uq_sync_jobs_one_active) if one is active."""
    job = HistoricalSyncJob(
        agency_id=agency_id,
        date_from=request.date_from,
        date_to=request.date_to,
        max_calls=request.max_calls,
    )
    session.add(job)
    session.flush()
    session.refresh(job)
    return job


def get_sync_job(
    session: Session, agency_id: uuid.UUID, job_id: uuid.UUID
) -> HistoricalSyncJob | None:
    """The job if it belongs to the agency: another agency's job does not exist for it."""
    return session.scalars(
        select(HistoricalSyncJob).where(
            HistoricalSyncJob.id == job_id, HistoricalSyncJob.agency_id == agency_id
        )
    ).one_or_none()


def list_sync_jobs(
    session: Session, agency_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[HistoricalSyncJob], int]:
    """The agency's jobs, newest first (idx_sync_jobs_created), and how many there are."""
    mine = HistoricalSyncJob.agency_id == agency_id
    jobs = session.scalars(
        select(HistoricalSyncJob)
        .where(mine)
        .order_by(HistoricalSyncJob.created_at.desc(), HistoricalSyncJob.id)
        .limit(limit)
        .offset(offset)
    ).all()
    total = session.scalar(select(func.count()).select_from(HistoricalSyncJob).where(mine))
    return list(jobs), int(total or 0)


def cancel_sync_job(session: Session, job: HistoricalSyncJob) -> HistoricalSyncJob:
    """Cancel an active job; a page in flight still commits, then no next page is sent."""
    stmt = (
        update(HistoricalSyncJob)
        .where(HistoricalSyncJob.id == job.id, HistoricalSyncJob.status.in_(ACTIVE))
        .values(status=SyncJobStatus.cancelled, completed_at=func.now())
        .returning(HistoricalSyncJob)
        .execution_options(populate_existing=True)
    )
    cancelled = session.scalars(stmt).one_or_none()
    if cancelled is None:
        raise NotCancellable(f"job {job.id} is already {job.status.value}")
    return cancelled
