"""A page of process-historical-sync with an unreadable call in it, against the fake Ultravox
over HTTP and real PostgreSQL: the call is counted as failed and logged, the job goes on."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.fakes.ultravox import BAD_RECORDS, FakeUltravox
from app.models import Call, HistoricalSyncJob
from app.ultravox import service
from app.ultravox.fetch_ahead import PageFailed
from tests.helpers import make_agency

REASONS = {
    "missing_call_id": "unreadable: callId: Field required",
    "call_id_not_uuid": "unreadable: callId: Input should be a valid UUID",
    "created_not_timestamp": "unreadable: created: Input should be a valid datetime",
    "record_not_object": "unreadable: record: Input should be a valid dictionary",
    "created_a_number": 'refused by the database: date/time field value out of range: "1767225600"',
    "joined_not_timestamp": "refused by the database: invalid input syntax for type timestamp",
}


def new_job(session: Session) -> uuid.UUID:
    job = HistoricalSyncJob(agency_id=make_agency(session), date_to=func.now(), max_calls=1000)
    session.add(job)
    session.commit()
    return job.id


def import_all(job_id: uuid.UUID) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The job's pages imported in this process; the last result and every batch's."""
    results: list[dict[str, Any]] = []
    return service.import_pages(job_id, None, results.append), results


def ended_ids(calls: list[dict[str, Any]]) -> set[uuid.UUID]:
    return {uuid.UUID(call["callId"]) for call in calls if call["ended"] is not None}


@pytest.mark.parametrize("variant", sorted(BAD_RECORDS))
def test_an_unreadable_call_is_counted_as_failed_logged_and_the_job_goes_on(
    session: Session,
    fake_ultravox: FakeUltravox,
    caplog: pytest.LogCaptureFixture,
    variant: str,
) -> None:
    job_id = new_job(session)
    spoiled = fake_ultravox.calls[7]  # ended, on the first page of 50
    fake_ultravox.inject("malformed", variant=variant, at=7, on_cursor="")

    with caplog.at_level(logging.WARNING, logger="app.ultravox.service"):
        last, batches = import_all(job_id)

    good = ended_ids(fake_ultravox.calls) - {uuid.UUID(spoiled["callId"])}
    assert (last["status"], last["reason"]) == ("completed", "all_calls_fetched")
    assert sum(batch["failed"] for batch in batches) == 1
    job = session.get_one(HistoricalSyncJob, job_id)
    counts = (job.processed_calls, job.imported_calls, job.skipped_calls, job.failed_calls)
    assert counts == (237, len(good), 237 - len(good) - 1, 1)
    assert set(session.scalars(select(Call.ultravox_call_id))) == good
    [line] = [r.getMessage() for r in caplog.records if " skipped, " in r.getMessage()]
    assert line.startswith(f"sync job {job_id}: call ")
    assert REASONS[variant] in line
    if variant == "call_id_not_uuid":
        assert f"call call-{spoiled['callId'][:8]} skipped" in line
    elif variant in ("created_not_timestamp", "created_a_number", "joined_not_timestamp"):
        assert f"call {spoiled['callId']} skipped" in line


def test_unreadable_calls_on_several_pages_each_count_once(
    session: Session, fake_ultravox: FakeUltravox
) -> None:
    job_id = new_job(session)
    fake_ultravox.inject("malformed", variant="record_not_object", at=0, on_cursor="")
    fake_ultravox.inject("malformed", variant="missing_call_id", at=49, times=2)
    fake_ultravox.inject("malformed", variant="created_not_timestamp", at=36)  # the fourth

    last, _ = import_all(job_id)

    assert last["status"] == "completed"
    job = session.get_one(HistoricalSyncJob, job_id)
    assert (job.processed_calls, job.failed_calls) == (237, 4)
    spoiled = [fake_ultravox.calls[i] for i in (0, 99, 149, 186)]
    stored = set(session.scalars(select(Call.ultravox_call_id)))
    assert stored == ended_ids(fake_ultravox.calls) - ended_ids(spoiled)


def test_a_page_whose_envelope_is_malformed_still_fails(
    session: Session, fake_ultravox: FakeUltravox
) -> None:
    job_id = new_job(session)
    fake_ultravox.inject("malformed", variant="results_not_list")

    with pytest.raises(PageFailed) as failure:
        import_all(job_id)

    assert "GET /api/calls: results: Input should be a valid array" in str(failure.value.__cause__)
    assert session.get_one(HistoricalSyncJob, job_id).processed_calls == 0
