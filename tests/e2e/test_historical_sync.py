"""process-historical-sync end to end: API, real worker, fake Ultravox over HTTP, real faults."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.fakes.ultravox import FakeUltravox
from app.models import Call, HistoricalSyncJob, SyncJobStatus
from app.ultravox import tasks
from tests.helpers import ApiClient, Worker, make_agency, make_member, wait_for

pytestmark = pytest.mark.e2e

DATE_TO = "2030-01-01T00:00:00Z"


@pytest.fixture
def agency(session: Session) -> uuid.UUID:
    return make_agency(session)


@pytest.fixture
def headers(session: Session, agency: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_member(session, agency, 'owner')}"}


def start(client: ApiClient, headers: dict[str, str], **body: Any) -> str:
    response = client.post(
        "/api/historical-syncs", json={"date_to": DATE_TO, **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def finished(client: ApiClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/api/historical-syncs/{job_id}", headers=headers).json()
        return job if job["status"] not in ("pending", "in_progress") else None

    return wait_for(done, what=f"sync job {job_id} to finish")


def ended(fake: FakeUltravox) -> list[dict[str, Any]]:
    return [call for call in fake.calls if call["ended"] is not None]


def stored_call_ids(session: Session) -> list[uuid.UUID]:
    session.expire_all()
    return list(session.scalars(select(Call.ultravox_call_id)))


def list_requests(fake: FakeUltravox) -> list[dict[str, str]]:
    return [query for _, path, query in fake.requests_seen if path == "/api/calls"]


def test_imports_every_ended_call_page_by_page(
    client: ApiClient, headers: dict[str, str], fake_ultravox: FakeUltravox, session: Session
) -> None:
    job = finished(client, headers, start(client, headers, max_calls=1000))
    expected = ended(fake_ultravox)
    assert job["status"] == "completed"
    assert job["processed_calls"] == job["total_calls"] == len(fake_ultravox.calls) == 237
    assert job["imported_calls"] == len(expected)
    assert job["skipped_calls"] == 237 - len(expected)
    assert job["progress"] == 1.0
    ids = stored_call_ids(session)
    assert sorted(ids) == sorted(uuid.UUID(call["callId"]) for call in expected)
    pages = list_requests(fake_ultravox)
    assert len(pages) == 5  # 237 calls, 50 a page
    assert {page["pageSize"] for page in pages} == {"50"}
    assert all(page["toDate"].startswith("2030-01-01") for page in pages)


def test_stops_at_max_calls(
    client: ApiClient, headers: dict[str, str], fake_ultravox: FakeUltravox, session: Session
) -> None:
    job = finished(client, headers, start(client, headers, max_calls=60))
    assert (job["status"], job["imported_calls"]) == ("completed", 60)
    assert len(stored_call_ids(session)) == 60
    # 45 of the first 50 calls have ended; the second page asks only for the 15 still wanted.
    assert [page["pageSize"] for page in list_requests(fake_ultravox)][:2] == ["50", "15"]


def test_the_date_range_reaches_ultravox_as_from_and_to_date(
    client: ApiClient, headers: dict[str, str], fake_ultravox: FakeUltravox, session: Session
) -> None:
    calls = fake_ultravox.calls
    date_from, date_to = calls[10]["created"], calls[29]["created"]
    job = finished(client, headers, start(client, headers, date_from=date_from, date_to=date_to))
    inside = [c for c in calls[10:30] if c["ended"] is not None]
    assert (job["status"], job["total_calls"], job["imported_calls"]) == (
        "completed",
        20,
        len(inside),
    )
    assert sorted(stored_call_ids(session)) == sorted(uuid.UUID(c["callId"]) for c in inside)


def test_rate_limit_waits_for_retry_after_then_goes_on(
    client: ApiClient, headers: dict[str, str], fake_ultravox: FakeUltravox
) -> None:
    fake_ultravox.inject("429", retry_after=1)
    job = finished(client, headers, start(client, headers, max_calls=1000))
    assert job["status"] == "completed"
    assert len(list_requests(fake_ultravox)) == 6  # the refused first page, then 5 pages


def test_server_errors_past_the_http_retries_retry_the_page_from_its_cursor(
    client: ApiClient, headers: dict[str, str], fake_ultravox: FakeUltravox, session: Session
) -> None:
    # 4 tenacity attempts fail inside the first page task, 2 more inside its Celery retry.
    fake_ultravox.inject("503", times=6, on_cursor=None)
    job = finished(client, headers, start(client, headers, max_calls=1000))
    assert job["status"] == "completed"
    assert job["imported_calls"] == len(ended(fake_ultravox)) == len(stored_call_ids(session))


def test_a_page_that_keeps_failing_fails_the_job_with_the_error(
    client: ApiClient, headers: dict[str, str], fake_ultravox: FakeUltravox
) -> None:
    fake_ultravox.inject("500", times=1000)
    job = finished(client, headers, start(client, headers))
    assert job["status"] == "failed"
    assert "HTTP 500" in job["error_message"]
    assert "after 3 retries" in job["error_message"]
    assert len(list_requests(fake_ultravox)) == 16  # 4 attempts x (1 run + 3 retries)


def test_a_malformed_page_fails_the_job_saying_what_was_wrong(
    client: ApiClient, headers: dict[str, str], fake_ultravox: FakeUltravox
) -> None:
    fake_ultravox.inject("malformed", variant="results_not_list")
    job = finished(client, headers, start(client, headers))
    assert job["status"] == "failed"
    assert job["error_message"].startswith("malformed page from GET /api/calls: results")


def test_unreadable_or_refused_calls_are_counted_as_failed_and_logged_as_the_job_goes_on(
    worker: Worker,  # its log is read
    client: ApiClient,
    headers: dict[str, str],
    fake_ultravox: FakeUltravox,
    session: Session,
) -> None:
    fake_ultravox.inject("malformed", variant="call_id_not_uuid", at=3, on_cursor="")
    fake_ultravox.inject("malformed", variant="created_not_timestamp", at=0)  # the second page
    fake_ultravox.inject("malformed", variant="joined_not_timestamp", at=10)  # the third
    bad = [fake_ultravox.calls[i] for i in (3, 50, 110)]  # all ended
    job_id = start(client, headers, max_calls=1000)
    job = finished(client, headers, job_id)
    expected = ended(fake_ultravox)
    assert job["status"] == "completed"
    assert (job["processed_calls"], job["failed_calls"]) == (237, 3)
    assert job["imported_calls"] == len(expected) - 3
    assert job["skipped_calls"] == 237 - len(expected)
    assert sorted(stored_call_ids(session)) == sorted(
        uuid.UUID(call["callId"]) for call in expected if call not in bad
    )
    lines = [
        f"sync job {job_id}: call call-{bad[0]['callId'][:8]} skipped, unreadable: callId:",
        f"sync job {job_id}: call {bad[1]['callId']} skipped, unreadable: created:",
        f"sync job {job_id}: call {bad[2]['callId']} skipped, refused by the database: invalid",
    ]

    def logged() -> bool:
        return all(line in worker.log_path.read_text() for line in lines)

    wait_for(logged, what="a log line for each failed call")


def test_an_agency_without_a_key_fails_its_job(
    client: ApiClient, session: Session, fake_ultravox: FakeUltravox
) -> None:
    agency = make_agency(session, api_key=None, name="No Key")
    headers = {"Authorization": f"Bearer {make_member(session, agency, 'admin')}"}
    job = finished(client, headers, start(client, headers))
    assert (job["status"], job["error_message"]) == ("failed", "Agency API key not configured")
    assert list_requests(fake_ultravox) == []
    assert job["needs_credentials"] == "Agency API key not configured"


def test_a_wrong_key_fails_the_job_without_retrying(
    client: ApiClient, session: Session, fake_ultravox: FakeUltravox
) -> None:
    agency = make_agency(session, api_key="not-the-key", name="Wrong Key")
    headers = {"Authorization": f"Bearer {make_member(session, agency, 'admin')}"}
    job = finished(client, headers, start(client, headers))
    assert job["status"] == "failed"
    assert "HTTP 401" in job["error_message"]
    assert len(list_requests(fake_ultravox)) == 1
    assert job["needs_credentials"] == job["error_message"]  # its enrichment waits too


def test_cancel_lets_the_page_in_flight_land_then_stops(
    client: ApiClient, headers: dict[str, str], fake_ultravox: FakeUltravox, session: Session
) -> None:
    # Every page is slow, so the first one lands alone, while the second is still on its way.
    fake_ultravox.inject("slow", times=3, seconds=1.5)
    job_id = start(client, headers, max_calls=1000)
    wait_for(lambda: list_requests(fake_ultravox), what="the first page request")
    response = client.post(f"/api/historical-syncs/{job_id}/cancel", headers=headers)
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")

    def first_page_landed() -> bool:
        session.expire_all()
        return session.get_one(HistoricalSyncJob, uuid.UUID(job_id)).processed_calls == 50

    wait_for(first_page_landed, what="the page in flight to land")
    job = client.get(f"/api/historical-syncs/{job_id}", headers=headers).json()
    assert (job["status"], job["imported_calls"]) == ("cancelled", len(stored_call_ids(session)))
    # The page fetched ahead while the first was stored is dropped; the fetcher stops there.
    assert len(list_requests(fake_ultravox)) <= 2
    again = client.post(f"/api/historical-syncs/{job_id}/cancel", headers=headers)
    assert again.status_code == 409


def test_a_duplicate_page_task_changes_nothing_twice(
    client: ApiClient, headers: dict[str, str], fake_ultravox: FakeUltravox, session: Session
) -> None:
    fake_ultravox.inject("slow", seconds=0.5, on_cursor="")
    job_id = start(client, headers, max_calls=1000)
    tasks.process_sync_page.delay(job_id, None)  # as if beat claimed the job at the same moment
    job = finished(client, headers, job_id)
    assert job["imported_calls"] == len(ended(fake_ultravox)) == len(stored_call_ids(session))
    assert job["processed_calls"] == 237


def test_page_result_keeps_the_seed_shape(
    session: Session, agency: uuid.UUID, fake_ultravox: FakeUltravox, worker: Worker
) -> None:
    job = HistoricalSyncJob(agency_id=agency, date_to=func.now(), max_calls=1000)
    session.add(job)
    session.commit()
    result = tasks.process_sync_page.delay(str(job.id), None).get(timeout=30)
    assert set(result) >= {"job_id", "status", "imported", "skipped", "failed", "reason"}
    assert (result["job_id"], result["status"], result["reason"]) == (
        str(job.id),
        "completed",
        "all_calls_fetched",
    )


def test_a_killed_worker_loses_nothing_and_the_job_resumes_at_its_cursor(
    client: ApiClient,
    headers: dict[str, str],
    fake_ultravox: FakeUltravox,
    session: Session,
    worker: Worker,
) -> None:
    fake_ultravox.inject("slow", seconds=0, on_cursor="")  # the first page answers at once,
    fake_ultravox.inject("slow", seconds=30)  # the second one hangs...
    job_id = start(client, headers, max_calls=1000)
    wait_for(lambda: len(list_requests(fake_ultravox)) == 2, what="the second page in flight")

    def first_page_stored() -> bool:
        session.expire_all()
        return session.get_one(HistoricalSyncJob, uuid.UUID(job_id)).cursor is not None

    wait_for(first_page_stored, what="the first page to be stored")
    worker.kill()  # ...and its worker dies mid-page
    fake_ultravox.clear_faults()
    try:
        session.expire_all()
        before = session.get_one(HistoricalSyncJob, uuid.UUID(job_id))
        assert before.status == SyncJobStatus.in_progress
        lost_cursor = before.cursor
        assert lost_cursor is not None
        # Time passes: the job's lease runs out.
        session.execute(
            update(HistoricalSyncJob).values(last_activity_at=func.now() - timedelta(seconds=301))
        )
        session.commit()
    finally:
        worker.start()
    tasks.process_historical_sync.delay()
    job = finished(client, headers, job_id)
    assert job["status"] == "completed"
    assert job["processed_calls"] == 237
    assert job["imported_calls"] == len(ended(fake_ultravox)) == len(stored_call_ids(session))
    cursors = [query.get("cursor") for query in list_requests(fake_ultravox)]
    assert cursors.count(lost_cursor) == 2  # the lost page was asked for again
