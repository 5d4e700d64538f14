"""Redis and PostgreSQL restarted in the middle of a drain: nothing is lost, and the work
resumes by itself (Redis: at beat's next ticks; PostgreSQL: tasks retry)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from app import drains
from app.fakes.ultravox import call_at, generate_calls, send_webhook
from app.models import Call, EnrichmentItem, ProcessingStatus, WebhookEvent
from tests.chaos.conftest import count, queue_events, tick, ticking_until, wait_for_quietly
from tests.helpers import ROOT, ApiClient, Worker, make_agency, wait_for

EVENTS = 4_000
SECRET = "whsec_restart"
COMPLETED = WebhookEvent.status == ProcessingStatus.completed
SMALL_BATCHES = "50"  # a slower drain, so that the outage lands in the middle of it


def start_services() -> None:
    """The project's own script brings back whatever is down."""
    subprocess.run(["bash", "scripts/services.sh"], cwd=ROOT, check=True, capture_output=True)


def restart_redis() -> None:
    # Redis runs without persistence: every queued message and drain mark is gone.
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], check=False, capture_output=True
    )
    start_services()


def restart_postgres(down_seconds: float) -> None:
    clusters = subprocess.run(
        ["pg_lsclusters", "--no-header"], check=True, capture_output=True, text=True
    ).stdout.split()
    version, name = clusters[0], clusters[1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "stop", "-m", "fast"],
        check=True,
        capture_output=True,
    )
    time.sleep(down_seconds)  # the outage itself: PostgreSQL is down for this long
    start_services()


def drain_under(outage: Callable[[], None]) -> tuple[int, int]:
    """Start a drain, cause the outage once a fifth is done; returns the events done when it
    began and when it ended."""
    drains.WEBHOOKS.request()
    wait_for(
        lambda: count(WebhookEvent, COMPLETED) >= EVENTS // 5,
        timeout=60,
        what="a fifth of the events",
    )
    before = count(WebhookEvent, COMPLETED)
    outage()
    return before, count(WebhookEvent, COMPLETED)


def assert_all_applied_once(calls: int) -> tuple[int, int]:
    dead = count(WebhookEvent, WebhookEvent.status == ProcessingStatus.failed)
    transcripts = count(EnrichmentItem)
    assert dead == 0
    assert count(WebhookEvent, COMPLETED) == EVENTS
    assert count(Call, Call.last_event == "call.billed") == calls
    assert transcripts == calls
    return dead, transcripts


@pytest.mark.timeout(300)
def test_redis_restarted_mid_drain_loses_nothing_and_resumes_within_two_ticks(
    session: Session, chaos_worker: Callable[..., Worker], report: Callable[..., None]
) -> None:
    calls = queue_events(make_agency(session, webhook_secret=SECRET), seed=21, events=EVENTS)
    worker = chaos_worker("default,webhooks", WEBHOOK_BATCH_SIZE=SMALL_BATCHES)
    # Celery's worker can die of its own reconnect (kombu's Redis channel closed twice, an
    # AttributeError); a deployment's supervisor starts it again, and so does this test.
    with worker.supervised() as exits:
        _, before = drain_under(restart_redis)
        # Each tick stands for one of beat's minutes; the worker reconnects meanwhile.
        ticks = 0
        for ticks in (1, 2):  # noqa: B007
            tick("process-webhook-queue")
            if wait_for_quietly(lambda: count(WebhookEvent, COMPLETED) > before, 15):
                break
        resumed = count(WebhookEvent, COMPLETED) > before
        ticking_until(
            "process-webhook-queue",
            lambda: count(WebhookEvent, COMPLETED) == EVENTS,
            timeout=120,
            what="every event",
        )
        worker.wait_idle()
    dead, transcripts = assert_all_applied_once(calls)
    restarted = f", the worker restarted after exiting {exits}" if exits else ""
    report(
        "Redis restarted mid drain",
        f"redis shutdown nosave, then started again; {before:,} of {EVENTS:,} events done",
        f"resumed at tick {ticks}{restarted}; {EVENTS:,} completed, {dead} dead, "
        f"{transcripts:,} transcript items for {calls:,} calls",
        resumed,
    )
    assert resumed, "processing did not resume within two ticks"


@pytest.mark.timeout(300)
def test_postgres_restarted_mid_drain_tasks_retry_and_nothing_is_lost(
    session: Session,
    chaos_worker: Callable[..., Worker],
    api: ApiClient,
    report: Callable[..., None],
) -> None:
    agency = make_agency(session, webhook_secret=SECRET)
    calls = queue_events(agency, seed=22, events=EVENTS)
    worker = chaos_worker("default,webhooks", WEBHOOK_BATCH_SIZE=SMALL_BATCHES)
    before, after = drain_under(lambda: restart_postgres(down_seconds=2))
    session.close()  # its connection died with the server
    ticking_until(
        "process-webhook-queue",
        lambda: count(WebhookEvent, COMPLETED) == EVENTS,
        timeout=120,
        what="every event",
    )
    worker.wait_idle()
    dead, transcripts = assert_all_applied_once(calls)
    retries = worker.log_path.read_text().count("Retry in")
    # The API's own pool recovers too: a webhook is accepted after the restart.
    [late] = generate_calls(1, seed=23, live_every=0)
    url = f"{api.base_url}/webhooks/ultravox/{agency}"
    answered = send_webhook(url, "call.started", call_at(late, "call.started"), SECRET)
    report(
        "PostgreSQL restarted mid drain",
        f"stopped (fast) for 2 s at {before:,} of {EVENTS:,} events, then started again "
        f"({after:,} done by then)",
        f"{retries} task retries logged; {EVENTS:,} completed, {dead} dead, {transcripts:,} "
        f"transcript items for {calls:,} calls; a webhook afterwards: {answered.status_code}",
        answered.status_code == 204,
    )
    assert answered.status_code == 204, answered.text
