"""Secrets stay secret through every flow, and the API's doors stay shut.

One run drives every flow with a worker logging at DEBUG while `redis-cli monitor` records
every broker command; then the worker's log, this process's log, the log tables and every
Celery message and result are searched for each secret."""

from __future__ import annotations

import base64
import logging
import re
import secrets
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
import requests
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from app import db, security
from app.broker import get_redis
from app.celery import ALL_QUEUES
from app.config import get_settings
from app.fakes.bubble import FakeBubble
from app.fakes.elevenlabs import FakeElevenLabs
from app.fakes.salesforce import FakeSalesforce
from app.fakes.ultravox import FakeUltravox, call_at, generate_calls, send_webhook
from app.models import (
    EnrichmentItem,
    ProcessingStatus,
    SyncJobStatus,
    SyncLog,
    SyncOperation,
    SyncQueueItem,
)
from tests.campaigns import all_day, enroll
from tests.chaos.conftest import count, scalar, tick
from tests.conftest import BUBBLE_API_TOKEN, ELEVENLABS_API_KEY, ULTRAVOX_API_KEY
from tests.helpers import ApiClient, Worker, make_agency, make_member, wait_for
from tests.salesforce import connect, contacts

LOGGED_TABLES = (
    "webhook_logs",
    "cron_job_logs",
    "sync_logs",
    "webhook_queue",
    "enrichment_queue",
    "sync_queue",
    "call_logs",
    "campaign_dials",
)


@pytest.fixture
def broker_traffic(tmp_path: Path) -> Iterator[Path]:
    """Every command the broker receives while the test runs, as `redis-cli monitor` prints."""
    path = tmp_path / "monitor.log"
    with path.open("w") as out:
        monitor = subprocess.Popen(["redis-cli", "-h", "127.0.0.1", "monitor"], stdout=out)
        wait_for(lambda: path.read_text().startswith("OK"), what="redis-cli monitor")
        try:
            yield path
        finally:
            monitor.terminate()
            monitor.wait(timeout=10)


def decoded_messages(traffic: str) -> str:
    """The bodies of the Celery messages seen, base64-decoded (kombu encodes them)."""
    bodies = re.findall(r'\\"body\\": \\"([A-Za-z0-9+/=]+)\\"', traffic)
    return "\n".join(base64.b64decode(body).decode(errors="replace") for body in bodies)


@pytest.mark.timeout(300)
def test_no_secret_reaches_a_log_a_log_table_a_message_or_a_result(
    session: Session,
    api: ApiClient,
    chaos_worker: Callable[..., Worker],
    broker_traffic: Path,
    fake_ultravox: FakeUltravox,
    fake_elevenlabs: FakeElevenLabs,
    fake_salesforce: FakeSalesforce,
    fake_bubble: FakeBubble,
    caplog: pytest.LogCaptureFixture,
    report: Callable[..., None],
) -> None:
    caplog.set_level(logging.DEBUG)
    webhook_secret = f"whsec_{secrets.token_hex(12)}"
    agency = make_agency(session, webhook_secret=webhook_secret)
    owner_token = make_member(session, agency, "owner")
    worker = chaos_worker(ALL_QUEUES, LOG_LEVEL="DEBUG")

    # Webhooks, with credentials a proxy might forward beside the signature.
    url = f"{api.base_url}/webhooks/ultravox/{agency}"
    [call] = generate_calls(1, seed=51, live_every=0)
    fake_ultravox.add_calls([call])  # so that its transcript can be fetched
    for event in ("call.started", "call.ended"):
        response = send_webhook(url, event, call_at(call, event), webhook_secret)
        assert response.status_code == 204
    forwarded = {
        "Authorization": f"Bearer {owner_token}",
        "Cookie": f"sb={owner_token}",
        "Content-Type": "application/json",
    }
    api.post(f"/webhooks/ultravox/{agency}", data=b"{}", headers=forwarded)
    # A historical sync and its enrichment, through the API.
    response = api.post(
        "/api/historical-syncs",
        json={"date_to": "2030-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {owner_token}"},
    )
    assert response.status_code == 201
    # A Salesforce sync, a campaign's dial and a Bubble push, from beat's ticks.
    connect(session, fake_salesforce)
    contacts(fake_salesforce, 3)
    enroll(session, all_day(session))
    with db.session_scope() as setup:
        setup.execute(
            insert(SyncQueueItem).values(
                table_name="users",
                record_id="u1",
                operation=SyncOperation.INSERT,
                payload={"_type": "user", "email": "ada@example.org"},
            )
        )
    for entry in ("sync-salesforce-leads", "campaign-orchestrator", "bubble-sync-processor"):
        tick(entry)
    service_token = get_settings().service_token.get_secret_value()  # type: ignore[union-attr]
    api.post(
        "/functions/v1/process-webhook-queue", headers={"Authorization": f"Bearer {service_token}"}
    )

    def progress() -> dict[str, object]:
        return {
            "sync job": scalar(text("SELECT status FROM historical_sync_jobs")),
            "open enrichment items": count(
                EnrichmentItem, EnrichmentItem.status != ProcessingStatus.completed
            ),
            "sync_logs": count(SyncLog),
            "dials": len(fake_elevenlabs.dials),
            "pushed": count(SyncQueueItem, SyncQueueItem.status == ProcessingStatus.completed),
        }

    done = {
        "sync job": SyncJobStatus.completed,
        "open enrichment items": 0,
        "sync_logs": 1,
        "dials": 1,
        "pushed": 1,
    }
    try:
        wait_for(lambda: progress() == done, timeout=120, what="every flow to finish")
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}: {progress()}") from None
    worker.wait_idle()

    settings = get_settings()
    issued = list(fake_salesforce._tokens)  # the access tokens the org handed out
    needles = {
        "Ultravox API key": ULTRAVOX_API_KEY,
        "webhook secret": webhook_secret,
        "ElevenLabs API key": ELEVENLABS_API_KEY,
        "Bubble API token": BUBBLE_API_TOKEN,
        "Salesforce client secret": settings.salesforce_client_secret.get_secret_value(),  # type: ignore[union-attr]
        "Salesforce refresh token": fake_salesforce.refresh_token,
        **{f"Salesforce access token {n}": token for n, token in enumerate(issued)},
        "service token": service_token,
        "JWT secret": settings.jwt_secret.get_secret_value(),
        "encryption key": settings.encryption_key.get_secret_value(),
        "a user's bearer token": owner_token,
    }
    with db.session_scope() as reader:
        tables = "\n".join(
            str(row)
            for table in LOGGED_TABLES
            for row in reader.execute(text(f"SELECT t::text FROM {table} t"))  # noqa: S608
        )
    redis = get_redis()
    results = "\n".join(str(redis.get(key)) for key in redis.scan_iter("celery-task-meta-*"))
    traffic = broker_traffic.read_text()
    haystacks = {
        "worker log (DEBUG)": worker.log_path.read_text(),
        "API and test process log (DEBUG)": caplog.text,
        "log and queue tables": tables,
        "Celery messages (broker traffic, bodies decoded)": traffic + decoded_messages(traffic),
        "task results": results,
    }
    leaks = [
        f"{name} in {where}"
        for name, needle in needles.items()
        for where, hay in haystacks.items()
        if needle in hay
    ]
    sizes = ", ".join(f"{where} {len(hay):,} chars" for where, hay in haystacks.items())
    report(
        "secrets in logs, tables, messages, results",
        f"{len(needles)} secrets used by every flow",
        f"searched {sizes}: {leaks or 'none'}",
        not leaks,
    )
    assert all(len(hay) > 0 for hay in haystacks.values())
    assert not leaks


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_apis_doors_stay_shut(
    api: ApiClient, session: Session, report: Callable[..., None]
) -> None:
    agency = make_agency(session)
    owner = make_member(session, agency, "owner")
    job = api.post(
        "/api/historical-syncs", json={"date_to": "2030-01-01T00:00:00Z"}, headers=bearer(owner)
    ).json()["id"]
    stranger = make_member(session, make_agency(session, name="Other"), "owner")
    user = str(security.user_from_token(owner))
    claims = {"sub": user, "aud": "authenticated"}
    wrong_key = jwt.encode(
        {**claims, "exp": 2**31}, "not-the-secret-but-long-enough-for-hs256", "HS256"
    )
    expired = security.create_token(uuid.UUID(user), ttl=timedelta(seconds=-60))
    unsigned = jwt.encode({**claims, "exp": 2**31}, "", "none")
    tokens = {
        "wrongly signed": wrong_key,
        "expired": expired,
        "unsigned (alg none)": unsigned,
        "garbage": "not.a.jwt",
    }
    doors: dict[str, Callable[[dict[str, str]], requests.Response]] = {
        "list": lambda h: api.get("/api/historical-syncs", headers=h),
        "read": lambda h: api.get(f"/api/historical-syncs/{job}", headers=h),
        "start": lambda h: api.post(
            "/api/historical-syncs", json={"date_to": "2030-01-01T00:00:00Z"}, headers=h
        ),
        "cancel": lambda h: api.post(f"/api/historical-syncs/{job}/cancel", headers=h),
    }
    answers: dict[str, int] = {}
    for door, knock in doors.items():
        answers[f"{door}, no token"] = knock({}).status_code
        for kind, token in tokens.items():
            answers[f"{door}, {kind}"] = knock(bearer(token)).status_code
    refused_401 = all(status == 401 for status in answers.values())
    cross = {
        "read": api.get(f"/api/historical-syncs/{job}", headers=bearer(stranger)).status_code,
        "cancel": api.post(
            f"/api/historical-syncs/{job}/cancel", headers=bearer(stranger)
        ).status_code,
    }
    still_active = (
        scalar(text("SELECT status FROM historical_sync_jobs WHERE id = :id").bindparams(id=job))
        != SyncJobStatus.cancelled
    )
    functions = {
        "none": api.post("/functions/v1/process-webhook-queue").status_code,
        "a user's JWT": api.post(
            "/functions/v1/process-webhook-queue", headers=bearer(owner)
        ).status_code,
        "wrong token": api.post(
            "/functions/v1/bubble_sync", json={"action": "retry_failed"}, headers=bearer("x" * 32)
        ).status_code,
    }
    report(
        "API authentication and tenancy",
        f"{len(answers)} requests with no, wrongly signed, expired, unsigned or garbage "
        "tokens; another agency's owner; /functions/v1 without the service token",
        f"401 for all {len(answers)}: {refused_401}; other agency read/cancel: {cross}, job "
        f"untouched: {still_active}; functions: {functions}",
        refused_401
        and set(cross.values()) == {404}
        and still_active
        and set(functions.values()) == {401},
    )
    assert refused_401, answers
    assert cross == {"read": 404, "cancel": 404}
    assert still_active
    assert functions == {"none": 401, "a user's JWT": 401, "wrong token": 401}
    assert scalar(text("SELECT count(*) FROM historical_sync_jobs")) == 1  # no door let one in
