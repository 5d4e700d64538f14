"""process-historical-sync: import a job's calls from Ultravox page by page (seed 000).

A page task imports a run of pages. A thread fetches them ahead (app.ultravox.fetch_ahead)
while the task stores what has arrived: the pages of a batch are upserted, counted and the
cursor moved past them in one transaction. After a few seconds the task hands the job on to
a fresh task at the current cursor, so one message carries many pages without holding a
worker for long.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from app import agencies, crypto, db, pauses
from app.config import get_settings
from app.models import HistoricalSyncJob, SyncJobStatus
from app.ultravox import queries
from app.ultravox.fetch_ahead import FetchAhead, Fetched, PageFailed
from app.ultravox.schemas import DEFAULT_MAX_CALLS
from app.ultravox_api.client import UltravoxClient, budget, cursor_from_next
from app.ultravox_api.schemas import BadCall, CallsPage

log = logging.getLogger(__name__)

RUN_SECONDS = 2.0  # how long one task imports before handing the job on

Result = dict[str, Any]
Progress = Callable[[Result], None]


@dataclass(frozen=True)
class _Job:
    id: uuid.UUID
    agency_id: uuid.UUID
    max_calls: int
    date_from: datetime | None
    date_to: datetime


def import_pages(job_id: uuid.UUID, cursor: str | None, report: Progress) -> Result:
    """Import pages from `cursor` on, for about RUN_SECONDS.

    Safe to run twice for the same cursor: a page is written only by the run that finds the
    job still at that page's cursor. Returns the seed's per-job result of the last page;
    status `in_progress` means the caller dispatches the job again at result["cursor"].
    Raises PageFailed when Ultravox fails, or storing a batch of pages does.
    """
    with db.session_scope() as session:
        row = queries.start_page(session, job_id, cursor)
        if row is None:
            return _superseded(job_id, cursor)
        job = _Job(
            row.id, row.agency_id, row.max_calls or DEFAULT_MAX_CALLS, row.date_from, row.date_to
        )
        imported = row.imported_calls
        encrypted = queries.get_encrypted_api_key(session, job.agency_id)
        api_key = crypto.decrypt(session, encrypted)
    if not api_key:
        needs_key(job_id, agencies.NO_ULTRAVOX_API_KEY)
        return fail_job(job_id, cursor, agencies.NO_ULTRAVOX_API_KEY)
    settings = get_settings()
    client = UltravoxClient(
        settings.ultravox_api_base_url,
        api_key,
        timeout=settings.ultravox_timeout_seconds,
        budget=budget(job.agency_id, api_key),
    )
    with closing(client):
        return _run(client, job, cursor, imported, report)


def hand_off(job_id: uuid.UUID) -> None:
    """This worker no longer runs the job: its next page waits in the broker."""
    with db.session_scope() as session:
        queries.hand_off(session, job_id)


def needs_key(job_id: uuid.UUID, reason: str) -> None:
    """The job's agency has no usable Ultravox key: its Ultravox work pauses (app.pauses)."""
    with db.session_scope() as session:
        agency_id = session.get_one(HistoricalSyncJob, job_id).agency_id
        pauses.pause(session, pauses.ULTRAVOX, reason, agency_id=agency_id)


def _run(
    client: UltravoxClient,
    job: _Job,
    cursor: str | None,
    imported: int,
    report: Progress,
) -> Result:
    deadline = time.monotonic() + RUN_SECONDS
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ultravox-fetch-ahead") as pool:
        while True:
            ahead = FetchAhead(
                partial(_fetch, client, job),
                cursor,
                max_calls=job.max_calls,
                imported=imported,
                deadline=deadline,
            )
            pool.submit(ahead.run)
            try:
                while pages := ahead.take():
                    result = _stored(job, cursor, pages)
                    report(result)
                    if result["status"] != SyncJobStatus.in_progress:
                        return result
                    imported, cursor = result["imported_calls"], result["cursor"]
            finally:
                ahead.stop()
            # The fetcher stops at the deadline, or where it expected max_calls to be reached;
            # calls that were already stored can leave the job short of max_calls there.
            if time.monotonic() >= deadline:
                return result


def _stored(job: _Job, cursor: str | None, pages: list[Fetched]) -> Result:
    """The pages stored in one transaction; a failure names the first page's cursor, since
    the pages before it are already committed. When the database refuses the batch (a call
    it cannot cast, say), its calls are stored again one by one, and only the bad ones fail."""
    try:
        try:
            return _store(job, cursor, pages, _upsert_pages)
        except OperationalError:
            raise
        except DBAPIError as error:
            reason = db.error_reason(error)
            log.warning("sync job %s: batch refused (%s); storing it call by call", job.id, reason)
            return _store(job, cursor, pages, _upsert_each)
    except OperationalError:
        raise  # the database itself: the task retries
    except Exception as error:
        raise PageFailed(cursor) from error


Upsert = Callable[[Session, uuid.UUID, list[Fetched]], tuple[int, list[BadCall]]]


def _store(job: _Job, cursor: str | None, pages: list[Fetched], upsert: Upsert) -> Result:
    with db.session_scope() as session:
        result, refused = _store_pages(session, job, cursor, pages, upsert)
    if result["status"] != "superseded":
        _log_failed_calls(job.id, [bad for fetched in pages for bad in fetched.page.bad], refused)
    return result


def _upsert_pages(
    session: Session, agency_id: uuid.UUID, pages: list[Fetched]
) -> tuple[int, list[BadCall]]:
    """The pages' ended calls in one statement: (how many were new, none refused)."""
    if not any(call.ended is not None for fetched in pages for call in fetched.page.results):
        return 0, []
    return queries.upsert_ended_calls(session, agency_id, [f.page.body for f in pages]), []


def _upsert_each(
    session: Session, agency_id: uuid.UUID, pages: list[Fetched]
) -> tuple[int, list[BadCall]]:
    """The pages' ended calls one at a time, each under a savepoint: (how many were new, the
    calls the database refused, with its reason)."""
    imported, refused = 0, []
    for fetched in pages:
        for call in json.loads(fetched.page.body)["results"]:
            if call.get("ended") is None:
                continue
            try:
                with session.begin_nested():
                    imported += queries.upsert_calls(session, agency_id, [call])
            except OperationalError:
                raise
            except DBAPIError as error:
                refused.append(BadCall(call["callId"], db.error_reason(error)))
    return imported, refused


def _log_failed_calls(job_id: uuid.UUID, unreadable: list[BadCall], refused: list[BadCall]) -> None:
    for bad in unreadable:
        call = bad.call_id or "without a callId"
        log.warning("sync job %s: call %s skipped, unreadable: %s", job_id, call, bad.reason)
    for bad in refused:
        why = f"refused by the database: {bad.reason}"
        log.warning("sync job %s: call %s skipped, %s", job_id, bad.call_id, why)


def _fetch(client: UltravoxClient, job: _Job, cursor: str | None, size: int) -> CallsPage:
    return client.list_calls(
        cursor=cursor, page_size=size, from_date=job.date_from, to_date=job.date_to
    )


def _store_pages(
    session: Session, job: _Job, cursor: str | None, pages: list[Fetched], upsert: Upsert
) -> tuple[Result, list[BadCall]]:
    """Upsert the pages' ended calls and move the job past them, in the caller's transaction;
    returns the result and the calls the database refused."""
    calls = [call for fetched in pages for call in fetched.page.results]
    last = pages[-1]
    next_cursor = cursor_from_next(last.page.next)
    status = queries.lock_job_at_cursor(session, job.id, cursor)
    if status is None:
        return _superseded(job.id, cursor), []
    imported, refused = upsert(session, job.agency_id, pages)
    skipped = len(calls) - imported - len(refused)
    unreadable = sum(len(fetched.page.bad) for fetched in pages)
    failed = unreadable + len(refused)
    totals = queries.update_sync_job_progress(
        session,
        job.id,
        cursor=next_cursor,
        processed=len(calls) + unreadable,
        imported=imported,
        skipped=skipped,
        failed=failed,
        total=last.page.total,
    )
    result: Result = {
        "job_id": str(job.id),
        "status": SyncJobStatus.in_progress.value,
        "imported": imported,
        "skipped": skipped,
        "failed": failed,
        "processed_calls": totals.processed_calls,
        "imported_calls": totals.imported_calls,
        "total_calls": totals.total_calls,
    }
    reason = _completion_reason(
        totals.imported_calls, job.max_calls, next_cursor, last.page, last.size
    )
    if status == SyncJobStatus.cancelled:
        result["status"] = SyncJobStatus.cancelled.value
    elif reason:
        queries.complete_sync_job(session, job.id)
        result.update(status=SyncJobStatus.completed.value, reason=reason)
    else:
        result["cursor"] = next_cursor
    log.debug("sync job %s: %s", job.id, result)
    return result, refused


def _completion_reason(
    imported: int, max_calls: int, next_cursor: str | None, page: CallsPage, page_size: int
) -> str | None:
    if imported >= max_calls:
        return "max_calls_reached"
    if next_cursor is None or page.received < page_size:
        return "all_calls_fetched"
    return None


def _superseded(job_id: uuid.UUID, cursor: str | None) -> Result:
    """Another task already moved this job past `cursor`, or the job has ended."""
    return {"job_id": str(job_id), "status": "superseded", "cursor": cursor}


def fail_job(job_id: uuid.UUID, cursor: str | None, error: str) -> Result:
    """fail_sync_job, unless another task has already moved the job past `cursor`."""
    with db.session_scope() as session:
        if queries.lock_job_at_cursor(session, job_id, cursor) is None:
            return _superseded(job_id, cursor)
        queries.fail_sync_job(session, job_id, error)
    log.warning("sync job %s failed: %s", job_id, error)
    return {"job_id": str(job_id), "error": error}
