"""Import ended calls from the fake Ultravox: page tasks on one worker vs one upsert per call."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import func, select, text

from app import processes
from bench.environment import (
    LOG_DIR,
    ULTRAVOX_API_KEY,
    Environment,
    celery_worker,
    fake_ultravox,
    met,
)

GOAL_CALLS_PER_SECOND = 2000
GOAL_RATIO = 10


def run(env: Environment, *, calls: int, per_call: int) -> list[tuple[str, ...]]:
    fake = fake_ultravox(env, calls)
    with (
        processes.child("fake-ultravox", fake, log_dir=LOG_DIR, ready=lambda log: "serving" in log),
        processes.child(
            "worker", celery_worker(), log_dir=LOG_DIR, ready=lambda log: " ready." in log
        ),
    ):
        batch_rate = _page_tasks(calls)
        per_call_rate = _one_upsert_per_call(env, per_call)
    ratio = batch_rate / per_call_rate
    return [
        ("way", "calls", "calls/s", "goal", "met"),
        (
            "page tasks: pages of 50 fetched ahead, stored in batches (1 worker)",
            f"{calls:,}",
            f"{batch_rate:,.0f}",
            f">= {GOAL_CALLS_PER_SECOND:,}",
            met(batch_rate >= GOAL_CALLS_PER_SECOND),
        ),
        (
            "seed's way: one upsert_call_from_sync round trip per call",
            f"{per_call:,}",
            f"{per_call_rate:,.0f}",
            "baseline",
            "",
        ),
        ("ratio", "", f"{ratio:.1f}x", f">= {GOAL_RATIO}x", met(ratio >= GOAL_RATIO)),
    ]


def _agency(name: str) -> uuid.UUID:
    from app import agencies, db

    with db.session_scope() as session:
        return agencies.add_agency(session, name=name, ultravox_api_key=ULTRAVOX_API_KEY)


def _page_tasks(calls: int) -> float:
    """End to end: the job's first page is sent, the worker chains pages until completed."""
    from app import db
    from app.models import HistoricalSyncJob, SyncJobStatus
    from app.ultravox import operations
    from app.ultravox.schemas import StartSync

    agency_id = _agency("bench: page tasks")
    request = StartSync(date_to=datetime.now(UTC) + timedelta(days=3650), max_calls=calls)
    started = time.perf_counter()
    job_id = operations.start(agency_id, request).id
    while True:
        with db.session_scope() as session:
            job = session.get_one(HistoricalSyncJob, job_id)
        if job.status not in (SyncJobStatus.pending, SyncJobStatus.in_progress):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if job.status != SyncJobStatus.completed or job.imported_calls != calls:
        raise SystemExit(f"import did not complete: {job.status} {job.error_message}")
    return calls / elapsed


def _one_upsert_per_call(env: Environment, count: int) -> float:
    """The seed's loop: fetch pages of 50, then one RPC round trip and commit per call."""
    from app import db
    from app.models import Call

    agency_id = _agency("bench: one upsert per call")
    session_http = requests.Session()
    session_http.headers["X-API-Key"] = ULTRAVOX_API_KEY
    url: str | None = f"{env.ultravox_url}/api/calls?pageSize=50&sort=created"
    stored = 0
    upsert = text("SELECT * FROM upsert_call_from_sync(:agency_id, CAST(:calls AS jsonb))")
    started = time.perf_counter()
    while url and stored < count:
        page = session_http.get(url, timeout=30).json()
        for call in page["results"][: count - stored]:
            if call.get("ended") is None:
                continue
            with db.session_scope() as session:
                session.execute(upsert, {"agency_id": agency_id, "calls": json.dumps([call])})
            stored += 1
        url = page["next"]
    elapsed = time.perf_counter() - started
    with db.session_scope() as session:
        total = session.scalar(
            select(func.count()).select_from(Call).where(Call.agency_id == agency_id)
        )
    if total != stored:
        raise SystemExit(f"per-call import stored {total} of {stored}")
    return stored / elapsed
