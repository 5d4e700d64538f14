"""Celery entry points for the historical sync (seed: process-historical-sync)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import Task
from sqlalchemy.exc import OperationalError

from app import cron_logs, db, drains
from app.celery import Queue, app, periodic_task
from app.config import get_settings
from app.ultravox import queries, service
from app.ultravox.fetch_ahead import PageFailed
from app.ultravox_api.client import UltravoxError, UltravoxRetryable

CLAIM_BATCH = 3  # seed 000: each invocation processes up to 3 jobs
PAGE_RETRIES = 3
# A job handed on whose next page has not started after this long is sent again: its message
# may have been taken by a worker that died. A duplicate page task is harmless (the cursor).
UNSTARTED_SECONDS = 10
NO_PENDING_JOBS = {"processed": 0, "message": "No pending jobs"}
SEED_RESULT_KEYS = (
    "job_id",
    "status",
    "imported",
    "skipped",
    "failed",
    "cursor",
    "reason",
    "error",
)


@periodic_task("process-historical-sync")
def process_historical_sync(unstarted_seconds: int = UNSTARTED_SECONDS) -> dict[str, Any]:
    """Claim pending jobs and jobs nobody runs (their worker died, or their next page has not
    started for `unstarted_seconds`); send each one's next page. A job whose worker died
    MAX_LOST_RUNS times since its last stored page fails. The rescue after a worker's death
    sends this with 0: the pages waiting in the broker may have gone with the worker."""
    claimed = _claim(unstarted_seconds)
    if not claimed:
        return NO_PENDING_JOBS
    for job in claimed:
        process_sync_page.delay(str(job.id), job.cursor)
    if len(claimed) == CLAIM_BATCH and unstarted_seconds < UNSTARTED_SECONDS:
        process_historical_sync.delay(unstarted_seconds)  # a rescue takes every job
    return {
        "processed": len(claimed),
        "results": [{"job_id": str(job.id), "cursor": job.cursor} for job in claimed],
    }


@app.task(
    name="ultravox.process_sync_page",
    bind=True,
    queue=Queue.SYNC,
    ignore_result=False,  # the result backend carries the job's progress for Flower
    max_retries=PAGE_RETRIES,
    autoretry_for=(OperationalError,),  # database blips only
    retry_backoff=True,
)
def process_sync_page(self: Task[Any, Any], job_id: str, cursor: str | None) -> dict[str, Any]:
    """Import a run of pages from `cursor`; then hand the job on at its new cursor."""
    job = uuid.UUID(job_id)
    self.update_state(state="PROGRESS", meta={"job_id": job_id, "cursor": cursor})
    try:
        result = service.import_pages(
            job, cursor, report=lambda meta: self.update_state(state="PROGRESS", meta=meta)
        )
    except PageFailed as failure:
        error = failure.__cause__
        # tenacity already retried within the request; now retry the page from its cursor.
        if isinstance(error, UltravoxRetryable) and self.request.retries < PAGE_RETRIES:
            countdown = get_settings().task_retry_seconds
            service.hand_off(job)
            raise self.retry(args=(job_id, failure.cursor), countdown=countdown) from error
        if isinstance(error, UltravoxError) and error.status == 401:
            service.needs_key(job, str(error))
        if isinstance(error, UltravoxError):
            retried = isinstance(error, UltravoxRetryable)
            message = f"{error} (after {PAGE_RETRIES} retries)" if retried else str(error)
        else:  # storing the page failed, and would fail the same way again
            message = f"{type(error).__name__}: {error}"
        result = service.fail_job(job, failure.cursor, message)
    except OperationalError:
        raise  # the database itself: retried above; beat re-claims the job if that fails too
    except Exception as error:
        # Anything else would fail the same way again: record it rather than loop on it.
        result = service.fail_job(job, cursor, f"{type(error).__name__}: {error}")
    _follow_up(job_id, result)
    return result


def _follow_up(job_id: str, result: dict[str, Any]) -> None:
    if result.get("status") == "in_progress":
        service.hand_off(uuid.UUID(job_id))
        process_sync_page.delay(job_id, result["cursor"])
    if result.get("imported_calls"):
        drains.ENRICHMENT.request()  # the imported calls queued their transcripts


def _claim(unstarted_seconds: int = UNSTARTED_SECONDS) -> list[Any]:
    """The jobs claimed that are to run; one whose worker died MAX_LOST_RUNS times since its
    last stored page fails instead."""
    with db.session_scope() as session:
        claimed = queries.claim_sync_jobs(
            session, limit=CLAIM_BATCH, lease_seconds=unstarted_seconds
        )
    lost = [job for job in claimed if job.lost_runs >= get_settings().max_lost_runs]
    for job in lost:
        service.fail_job(job.id, job.cursor, f"worker lost {job.lost_runs} times")
    return [job for job in claimed if job not in lost]


def process_historical_sync_here() -> dict[str, Any]:
    """process-historical-sync as the Edge Function ran it, for its old HTTP callers: one run
    of pages per claimed job in this process, answered with seed 000's body. A job still in
    progress goes on in a worker; a run that failed is handed to one, which retries it."""

    def run() -> dict[str, Any]:
        claimed = _claim()
        if not claimed:
            return NO_PENDING_JOBS
        with ThreadPoolExecutor(max_workers=len(claimed)) as pool:
            results = list(pool.map(lambda job: _run_here(str(job.id), job.cursor), claimed))
        return {"results": results}

    return cron_logs.run_logged("process-historical-sync", run)


def _run_here(job_id: str, cursor: str | None) -> dict[str, Any]:
    try:
        result = service.import_pages(uuid.UUID(job_id), cursor, report=lambda _: None)
    except PageFailed as failure:
        process_sync_page.delay(job_id, failure.cursor)
        return {"job_id": job_id, "error": str(failure.__cause__)}
    _follow_up(job_id, result)
    return {key: result[key] for key in SEED_RESULT_KEYS if key in result}
