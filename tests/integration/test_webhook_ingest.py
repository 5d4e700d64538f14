"""webhook-ingest over real HTTP: every answer, every webhook_logs row, the queue row."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import agencies
from app.fakes.ultravox import call_at, generate_calls, send_webhook, sign
from app.models import WebhookEvent, WebhookLog
from tests.helpers import ApiClient, api_with, make_agency, wait_for

SECRET = "whsec_agency_secret"
CALL = generate_calls(1, live_every=0)[0]


@pytest.fixture
def agency(session: Session) -> uuid.UUID:
    return make_agency(session, webhook_secret=SECRET)


def url(api: ApiClient, agency: uuid.UUID | str) -> str:
    return f"{api.base_url}/webhooks/ultravox/{agency}"


def post(
    api: ApiClient,
    agency: uuid.UUID | str,
    body: bytes,
    *,
    secret: str = SECRET,
    age: float = 0,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """POST `body` signed as Ultravox does, timestamped `age` seconds ago."""
    stamp = (datetime.now(UTC) - timedelta(seconds=age)).isoformat()
    sent = {
        "Content-Type": "application/json",
        "X-Ultravox-Webhook-Timestamp": stamp,
        "X-Ultravox-Webhook-Signature": sign(body, stamp, secret),
        **(headers or {}),
    }
    return requests.post(url(api, agency), data=body, headers=sent, timeout=10)


def event_body(event: str = "call.ended", call: dict[str, Any] = CALL) -> bytes:
    return json.dumps({"event": event, "call": call_at(call, event)}).encode()


def logs(session: Session) -> list[WebhookLog]:
    session.expire_all()
    return list(session.scalars(select(WebhookLog).order_by(WebhookLog.received_at)))


def queued(session: Session) -> list[WebhookEvent]:
    session.expire_all()
    return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.created_at)))


def test_an_accepted_event_is_queued_and_logged_together(
    api: ApiClient, agency: uuid.UUID, session: Session
) -> None:
    body = event_body()
    response = post(api, agency, body, headers={"Authorization": "Bearer x", "Cookie": "s=1"})
    assert response.status_code == 204
    assert response.content == b""
    [item] = queued(session)
    assert (item.agency_id, item.event_type, item.status) == (agency, "call.ended", "pending")
    assert item.payload == json.loads(body)
    [entry] = logs(session)
    assert entry.agency_id == agency
    assert (entry.request_method, entry.request_path) == ("POST", f"/webhooks/ultravox/{agency}")
    assert (entry.validation_success, entry.validation_error) == (True, None)
    assert entry.queue_item_id == item.id
    assert entry.request_body == json.loads(body)
    assert str(entry.source_ip) == "127.0.0.1"
    headers = {name.lower() for name in entry.request_headers or {}}
    assert "x-ultravox-webhook-signature" in headers
    assert not headers & {"authorization", "cookie"}


def test_the_fake_senders_webhook_is_accepted(
    api: ApiClient, agency: uuid.UUID, session: Session
) -> None:
    response = send_webhook(url(api, agency), "call.joined", call_at(CALL, "call.joined"), SECRET)
    assert response.status_code == 204
    assert [item.event_type for item in queued(session)] == ["call.joined"]


def test_a_duplicate_delivery_is_answered_204_and_queues_nothing_new(
    api: ApiClient, agency: uuid.UUID, session: Session
) -> None:
    body = event_body()
    for _ in range(3):  # Ultravox retries; each retry has a new timestamp and signature
        assert post(api, agency, body).status_code == 204
    [item] = queued(session)
    entries = logs(session)
    assert len(entries) == 3
    assert {entry.queue_item_id for entry in entries} == {item.id}
    assert all(entry.validation_success for entry in entries)


def test_each_event_of_a_call_is_queued_once(
    api: ApiClient, agency: uuid.UUID, session: Session
) -> None:
    events = ["call.started", "call.joined", "call.ended", "call.billed"]
    for event in [*events, *events]:
        assert post(api, agency, event_body(event)).status_code == 204
    assert sorted(item.event_type for item in queued(session)) == sorted(events)


def test_both_secrets_are_accepted_during_a_rotation_and_only_the_new_one_after(
    api: ApiClient, agency: uuid.UUID, session: Session
) -> None:
    agencies.rotate_webhook_secret(session, agency, "whsec_rotated")
    session.commit()
    started, joined, ended = (
        event_body(event) for event in ("call.started", "call.joined", "call.ended")
    )
    assert post(api, agency, started, secret=SECRET).status_code == 204
    assert post(api, agency, joined, secret="whsec_rotated").status_code == 204
    agencies.end_webhook_secret_rotation(session, agency)
    session.commit()
    assert post(api, agency, ended, secret=SECRET).status_code == 401
    assert post(api, agency, ended, secret="whsec_rotated").status_code == 204


BODY = event_body()
REJECTIONS: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "bad signature",
        {"secret": "whsec_wrong"},
        401,
        "signature does not match the agency's webhook secret",
    ),
    (
        "no signature",
        {"headers": {"X-Ultravox-Webhook-Signature": ""}},
        401,
        "missing X-Ultravox-Webhook-Signature header",
    ),
    ("stale", {"age": 301}, 400, "outside the 300s tolerance"),
    ("future", {"age": -400}, 400, "in the future, outside the 300s tolerance"),
    ("not json", {"body": b"{oops"}, 400, "body is not valid UTF-8 JSON"),
    (
        "unknown event",
        {"body": event_body().replace(b"call.ended", b"call.paused")},
        400,
        "unknown event 'call.paused'",
    ),
    (
        "no callId",
        {"body": b'{"event": "call.ended", "call": {"created": null}}'},
        400,
        "missing call.callId",
    ),
    (
        "not a uuid",
        {"body": b'{"event": "call.ended", "call": {"callId": "42"}}'},
        400,
        "call.callId is not a UUID",
    ),
    (
        "NUL",
        {"body": BODY.replace(b'"summary": ', b'"summary": "\\u0000", "x": ')},
        400,
        "body cannot be stored",
    ),
    (
        "NUL in a refused body",
        {"body": b'{"event": "call.unknown", "x": "\\u0000"}'},
        400,
        "unknown event 'call.unknown'",
    ),
    (
        "form",
        {"headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        415,
        "Content-Type must be application/json",
    ),
    (
        "too large",
        {"body": b'{"event": "call.ended", "pad": "' + b"x" * (1 << 20) + b'"}'},
        413,
        "body is larger than 1048576 bytes",
    ),
]


@pytest.mark.parametrize(
    ("case", "options", "status", "reason"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_every_rejection_is_answered_and_logged_with_its_reason(
    api: ApiClient,
    agency: uuid.UUID,
    session: Session,
    case: str,
    options: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    body = options.pop("body", BODY)
    response = post(api, agency, body, **options)
    assert response.status_code == status, response.text
    assert reason in response.json()["detail"]
    assert queued(session) == []
    [entry] = logs(session)
    assert entry.agency_id == agency
    assert entry.validation_success is False
    assert entry.validation_error is not None
    assert reason in entry.validation_error
    assert entry.queue_item_id is None
    stored = case not in {"not json", "NUL", "NUL in a refused body", "too large"}
    assert (entry.request_body is not None) == stored
    if case == "NUL in a refused body":
        assert "body not stored: unsupported Unicode escape sequence" in entry.validation_error


@pytest.mark.parametrize("agency_path", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_agency_is_404_and_logged_without_an_agency(
    api: ApiClient, session: Session, agency_path: str
) -> None:
    response = post(api, agency_path, BODY)
    assert response.status_code == 404
    assert response.json() == {"detail": f"no agency {agency_path}"}
    [entry] = logs(session)
    assert (entry.agency_id, entry.validation_success) == (None, False)
    assert entry.validation_error == f"no agency {agency_path}"
    assert entry.request_body == json.loads(BODY)


def test_an_agency_without_a_secret_refuses_everything(api: ApiClient, session: Session) -> None:
    bare = make_agency(session, name="No secret")
    response = post(api, bare, BODY)
    assert response.status_code == 401
    assert logs(session)[0].validation_error == "the agency has no webhook secret configured"


@pytest.fixture
def behind_proxy() -> Iterator[ApiClient]:
    """The API with loopback configured as its trusted proxy."""
    with api_with(trusted_proxies="127.0.0.1") as client:
        yield client


def test_secrets_are_reused_for_the_cache_time_then_looked_up_again(
    agency: uuid.UUID, session: Session
) -> None:
    with api_with(webhook_secret_cache_seconds=0.5) as cached:
        assert post(cached, agency, event_body("call.started")).status_code == 204
        agencies.rotate_webhook_secret(session, agency, "whsec_rotated")
        agencies.end_webhook_secret_rotation(session, agency)
        session.commit()
        joined = event_body("call.joined")
        assert post(cached, agency, joined, secret="whsec_rotated").status_code == 401
        wait_for(
            lambda: post(cached, agency, joined, secret="whsec_rotated").status_code == 204,
            timeout=5,
            what="the new secret to be looked up",
        )


def test_the_forwarded_address_is_believed_only_from_a_trusted_proxy(
    api: ApiClient, behind_proxy: ApiClient, agency: uuid.UUID, session: Session
) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    assert post(api, agency, event_body("call.started"), headers=forwarded).status_code == 204
    assert (
        post(behind_proxy, agency, event_body("call.joined"), headers=forwarded).status_code == 204
    )
    assert [str(entry.source_ip) for entry in logs(session)] == ["127.0.0.1", "203.0.113.9"]
