"""The old front end's and pg_cron's calls to /functions/v1, answered as the Edge Functions did."""

from __future__ import annotations

import uuid

import requests
from sqlalchemy.orm import Session

from app.api.main import create_app, server_options
from app.config import get_settings
from app.fakes import server
from app.fakes.ultravox import FakeUltravox
from app.ultravox import queries
from app.ultravox.schemas import StartSync
from tests.helpers import ApiClient, make_agency, make_member

BODY = {"date_to": "2030-01-01T00:00:00Z", "max_calls": 10}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def service() -> dict[str, str]:
    return bearer(get_settings().service_token.get_secret_value())  # type: ignore[union-attr]


def test_invoke_starts_and_reads_a_sync_with_the_users_token(
    api: ApiClient, session: Session
) -> None:
    agency = make_agency(session)
    owner = bearer(make_member(session, agency, "owner"))
    member = bearer(make_member(session, agency, "member"))
    assert api.post("/functions/v1/start-historical-sync", json=BODY).status_code == 401
    refused = api.post("/functions/v1/start-historical-sync", json=BODY, headers=member)
    assert refused.status_code == 403

    started = api.post("/functions/v1/start-historical-sync", json=BODY, headers=owner)
    assert started.status_code == 201
    job = started.json()
    assert (job["agency_id"], job["max_calls"]) == (str(agency), 10)
    again = api.post("/functions/v1/start-historical-sync", json=BODY, headers=owner)
    assert again.status_code == 409

    one = api.post("/functions/v1/get-sync-status", json={"job_id": job["id"]}, headers=member)
    assert (one.status_code, one.json()["id"]) == (200, job["id"])
    listed = api.post("/functions/v1/get-sync-status", json={}, headers=member).json()
    assert [listed["total"], listed["jobs"][0]["id"]] == [1, job["id"]]
    bodiless = api.post("/functions/v1/get-sync-status", headers=member)
    assert (bodiless.status_code, bodiless.json()["total"]) == (200, 1)
    missing = {"job_id": str(uuid.uuid4())}
    assert api.post("/functions/v1/get-sync-status", json=missing, headers=owner).status_code == 404


def test_invoke_cancels_a_sync(api: ApiClient, session: Session) -> None:
    agency = make_agency(session)
    owner = bearer(make_member(session, agency, "owner"))
    member = bearer(make_member(session, agency, "member"))
    # A row only: no page is on its way to a worker, so the job waits to be cancelled.
    job = {"job_id": str(queries.create_sync_job(session, agency, StartSync(**BODY)).id)}
    session.commit()
    cancel = "/functions/v1/cancel-historical-sync"
    assert api.post(cancel, json=job, headers=member).status_code == 403
    assert api.post(cancel, json={}, headers=owner).status_code == 422
    cancelled = api.post(cancel, json=job, headers=owner)
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert api.post(cancel, json=job, headers=owner).status_code == 409


def test_process_historical_sync_answers_seed_000s_body(
    api: ApiClient, session: Session, fake_ultravox: FakeUltravox
) -> None:
    path = "/functions/v1/process-historical-sync"
    assert api.post(path, headers=service()).json() == {
        "processed": 0,
        "message": "No pending jobs",
    }
    keyed, keyless = (
        make_agency(session, name="Keyed"),
        make_agency(session, name="Keyless", api_key=None),
    )
    # Rows only, as the old start function left them: no page is on its way to a worker.
    jobs = {
        agency: str(queries.create_sync_job(session, agency, StartSync(**BODY)).id)
        for agency in (keyed, keyless)
    }
    session.commit()

    answer = api.post(path, headers=service())
    assert answer.status_code == 200
    results = {result["job_id"]: result for result in answer.json()["results"]}
    assert results[jobs[keyless]] == {
        "job_id": jobs[keyless],
        "error": "Agency API key not configured",
    }
    done = results[jobs[keyed]]
    assert done == {
        "job_id": jobs[keyed],
        "status": "completed",
        "imported": done["imported"],
        "skipped": done["skipped"],
        "failed": 0,
        "reason": "max_calls_reached",
    }
    assert done["imported"] > 0


def test_a_browser_front_end_may_call_when_its_origin_is_allowed() -> None:
    origin = "https://app.team.test"
    settings = get_settings().model_copy(update={"cors_allowed_origins": origin})
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, apikey, x-client-info, content-type",
    }
    with server.serve(create_app(settings), **server_options(settings)) as running:
        url = f"{running.url}/functions/v1/get-sync-status"
        allowed = requests.options(url, headers=preflight, timeout=10)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == origin
        other = requests.options(
            url, headers={**preflight, "Origin": "https://evil.test"}, timeout=10
        )
        assert "access-control-allow-origin" not in other.headers
