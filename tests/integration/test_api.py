"""The historical-sync API's answers to bad input: auth, roles, validation, conflicts, tenancy."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from app import agencies, security
from app.config import get_settings
from app.models import AgencyRole
from tests.helpers import ApiClient, make_agency, make_member

BODY = {"date_to": "2030-01-01T00:00:00Z"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def owner(session: Session) -> tuple[uuid.UUID, dict[str, str]]:
    agency = make_agency(session)
    return agency, bearer(make_member(session, agency, "owner"))


def test_health_and_readiness(api: ApiClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "broker": True}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("not-a-jwt"),
        bearer(security.create_token(uuid.uuid4(), ttl=timedelta(seconds=-1))),
    ],
    ids=["missing", "malformed", "expired"],
)
def test_a_missing_or_bad_token_gets_401(api: ApiClient, headers: dict[str, str]) -> None:
    response = api.get("/api/historical-syncs", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_member_cannot_start_a_sync(api: ApiClient, session: Session) -> None:
    agency = make_agency(session)
    response = api.post(
        "/api/historical-syncs", json=BODY, headers=bearer(make_member(session, agency, "member"))
    )
    assert (response.status_code, response.json()["detail"]) == (
        403,
        "requires the admin or owner role",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "date_to"),
        ({**BODY, "max_calls": 0}, "max_calls"),
        ({**BODY, "max_calls": 100_001}, "max_calls"),
        ({**BODY, "date_from": "2030-01-02T00:00:00Z"}, "date_from must be before date_to"),
        # A datetime without an offset is read as UTC, not compared with an aware one (a 500).
        ({"date_from": 0, "date_to": "0002-01-01 00:00:00"}, "date_from must be before date_to"),
        ({**BODY, "date_to": "yesterday"}, "date_to"),
        ({**BODY, "surprise": 1}, "surprise"),
    ],
)
def test_an_invalid_body_gets_422_naming_the_field(
    api: ApiClient, owner: tuple[uuid.UUID, dict[str, str]], body: dict[str, object], field: str
) -> None:
    response = api.post("/api/historical-syncs", json=body, headers=owner[1])
    assert response.status_code == 422
    assert field in response.text


@pytest.mark.parametrize("body", [b"Infinity", b'{"date_to": "2030-01-01", "max_calls": NaN}'])
def test_a_body_that_cannot_be_echoed_back_still_gets_422(
    api: ApiClient, owner: tuple[uuid.UUID, dict[str, str]], body: bytes
) -> None:
    headers = {**owner[1], "Content-Type": "application/json"}
    response = api.post("/api/historical-syncs", data=body, headers=headers)
    assert response.status_code == 422, response.text
    assert "input" not in response.json()["detail"][0]


def test_a_second_active_job_gets_409(
    api: ApiClient, owner: tuple[uuid.UUID, dict[str, str]]
) -> None:
    first = api.post("/api/historical-syncs", json=BODY, headers=owner[1])
    assert first.status_code == 201
    assert first.json()["status"] == "pending"
    second = api.post("/api/historical-syncs", json=BODY, headers=owner[1])
    assert (second.status_code, second.json()["detail"]) == (
        409,
        "this agency already has an active sync job",
    )


def test_jobs_are_listed_newest_first_and_paginated(
    api: ApiClient, owner: tuple[uuid.UUID, dict[str, str]]
) -> None:
    created = []
    for _ in range(3):
        job = api.post("/api/historical-syncs", json=BODY, headers=owner[1]).json()
        api.post(f"/api/historical-syncs/{job['id']}/cancel", headers=owner[1])
        created.append(job["id"])
    page = api.get("/api/historical-syncs?limit=2", headers=owner[1]).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    assert [job["id"] for job in page["jobs"]] == created[::-1][:2]
    rest = api.get("/api/historical-syncs?limit=2&offset=2", headers=owner[1]).json()
    assert [job["id"] for job in rest["jobs"]] == [created[0]]


def test_another_agencys_job_is_404(
    api: ApiClient, session: Session, owner: tuple[uuid.UUID, dict[str, str]]
) -> None:
    job = api.post("/api/historical-syncs", json=BODY, headers=owner[1]).json()
    other = make_agency(session, name="Other")
    stranger = bearer(make_member(session, other, "owner"))
    assert api.get(f"/api/historical-syncs/{job['id']}", headers=stranger).status_code == 404
    cancel = api.post(f"/api/historical-syncs/{job['id']}/cancel", headers=stranger)
    assert cancel.status_code == 404
    assert api.get(f"/api/historical-syncs/{uuid.uuid4()}", headers=owner[1]).status_code == 404
    assert api.get("/api/historical-syncs", headers=stranger).json()["total"] == 0


def test_x_agency_id_picks_among_several_agencies(api: ApiClient, session: Session) -> None:
    first, second = make_agency(session, name="A"), make_agency(session, name="B")
    user = uuid.uuid4()
    for agency in (first, second):
        agencies.add_member(session, agency_id=agency, user_id=user, role=AgencyRole.admin)
    session.commit()
    headers = bearer(security.create_token(user))
    assert api.get("/api/historical-syncs", headers=headers).status_code == 400
    chosen = {**headers, "X-Agency-Id": str(second)}
    job = api.post("/api/historical-syncs", json=BODY, headers=chosen).json()
    assert job["agency_id"] == str(second)
    outsider = {**headers, "X-Agency-Id": str(uuid.uuid4())}
    assert api.get("/api/historical-syncs", headers=outsider).status_code == 403


def test_functions_run_a_periodic_task_for_the_service_token_only(api: ApiClient) -> None:
    path = "/functions/v1/process-historical-sync"
    assert api.post(path).status_code == 401
    assert api.post(path, headers=bearer("wrong")).status_code == 401
    service = bearer(get_settings().service_token.get_secret_value())  # type: ignore[union-attr]
    response = api.post(path, headers=service)
    assert (response.status_code, response.json()) == (
        200,
        {"processed": 0, "message": "No pending jobs"},
    )
    assert api.post("/functions/v1/no-such-function", headers=service).status_code == 404
