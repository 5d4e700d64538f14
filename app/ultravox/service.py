"""process-historical-sync: import one page of a job's calls from Ultravox (seed 000)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from app import crypto, db
from app.config import get_settings
from app.models import SyncJobStatus
from app.ultravox import queries
from app.ultravox.client import UltravoxClient, cursor_from_next
from app.ultravox.schemas import CALLS_PER_BATCH, DEFAULT_MAX_CALLS, CallsPage

log = logging.getLogger(__name__)

NO_API_KEY = "Agency API key not configured"

Result = dict[str, Any]
Progress = Callable[[Result], None]


def process_sync_page(job_id: uuid.UUID, cursor: str | None, report: Progress) -> Result:
    """Fetch the page at `cursor`, store its ended calls, and move the job on.

    Safe to run twice for the same page: only the run that finds the job still at `cursor`
    writes, in one transaction with the upsert. Returns the seed's per-job result; status
    `in_progress` means the caller should dispatch the page at result["cursor"].
    """
    with db.session_scope() as session:
        job = queries.start_page(session, job_id)
        if job is None or job.cursor != cursor:
            return {"job_id": str(job_id), "status": "superseded", "cursor": cursor}
        agency_id, max_calls = job.agency_id, job.max_calls or DEFAULT_MAX_CALLS
        date_from, date_to, imported_so_far = job.date_from, job.date_to, job.imported_calls
        api_key = crypto.decrypt(session, queries.get_encrypted_api_key(session, agency_id))
    if not api_key:
        return fail_job(job_id, NO_API_KEY)

    page_size = max(1, min(CALLS_PER_BATCH, max_calls - imported_so_far))
    client = UltravoxClient(get_settings().ultravox_api_base_url, api_key)
    page = client.list_calls(
        cursor=cursor, page_size=page_size, from_date=date_from, to_date=date_to
    )
    result = _store_page(job_id, agency_id, cursor, page, page_size, max_calls)
    report(result)
    return result


def _store_page(
    job_id: uuid.UUID,
    agency_id: uuid.UUID,
    cursor: str | None,
    page: CallsPage,
    page_size: int,
    max_calls: int,
) -> Result:
    ended = [call.model_dump(mode="json") for call in page.results if call.ended is not None]
    next_cursor = cursor_from_next(page.next)
    with db.session_scope() as session:
        job = queries.lock_job_at_cursor(session, job_id, cursor)
        if job is None:
            return {"job_id": str(job_id), "status": "superseded", "cursor": cursor}
        imported = queries.upsert_calls(session, agency_id, ended) if ended else 0
        totals = queries.update_sync_job_progress(
            session,
            job_id,
            cursor=next_cursor,
            processed=len(page.results),
            imported=imported,
            skipped=len(page.results) - imported,
            failed=0,
            total=page.total,
        )
        result: Result = {
            "job_id": str(job_id),
            "status": SyncJobStatus.in_progress.value,
            "imported": imported,
            "skipped": len(page.results) - imported,
            "failed": 0,
            "processed_calls": totals.processed_calls,
            "total_calls": totals.total_calls,
        }
        reason = _completion_reason(totals.imported_calls, max_calls, next_cursor, page, page_size)
        if job.status == SyncJobStatus.cancelled:
            result["status"] = SyncJobStatus.cancelled.value
        elif reason:
            queries.complete_sync_job(session, job_id)
            result.update(status=SyncJobStatus.completed.value, reason=reason)
        else:
            result["cursor"] = next_cursor
    log.info("sync job %s: %s", job_id, result)
    return result


def _completion_reason(
    imported: int, max_calls: int, next_cursor: str | None, page: CallsPage, page_size: int
) -> str | None:
    if imported >= max_calls:
        return "max_calls_reached"
    if next_cursor is None or len(page.results) < page_size:
        return "all_calls_fetched"
    return None


def fail_job(job_id: uuid.UUID, error: str) -> Result:
    """fail_sync_job, and the seed's per-job error result."""
    with db.session_scope() as session:
        queries.fail_sync_job(session, job_id, error)
    log.warning("sync job %s failed: %s", job_id, error)
    return {"job_id": str(job_id), "error": error}
