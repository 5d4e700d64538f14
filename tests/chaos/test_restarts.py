"""Redis and PostgreSQL failing in the middle of a drain, at the settings a user gets: restarted,
their connections killed, their connection slots all taken. Nothing is lost, nothing applied
twice, and the drain goes on by itself within seconds of the fault's end (app.rescue)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app import db, drains
from app.config import get_settings
from app.models import Call, EnrichmentItem, ProcessingStatus, WebhookEvent
from tests.chaos.conftest import FULL, Scenario, baseline, count, queue_events, time_to_progress
from tests.conftest import delete_rows
from tests.helpers import ROOT, Worker, make_agency, wait_for

EVENTS = 4_000
COMPLETED = WebhookEvent.status == ProcessingStatus.completed
SMALL_BATCHES = "50"  # a slower drain, so that the fault lands in the middle of it
EXHAUSTED_SECONDS = 30 if FULL else 10


def start_services() -> None:
    """The project's own script brings back whatever is down."""
    subprocess.run(["bash", "scripts/services.sh"], cwd=ROOT, check=True, capture_output=True)


def restart_redis() -> None:
    # Redis runs without persistence: every queued message and drain mark is gone.
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], check=False, capture_output=True
    )
    start_services()


def restart_postgres() -> None:
    clusters = subprocess.run(
        ["pg_lsclusters", "--no-header"], check=True, capture_output=True, text=True
    ).stdout.split()
    version, name = clusters[0], clusters[1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "stop", "-m", "fast"],
        check=True,
        capture_output=True,
    )
    time.sleep(2)  # the outage itself: PostgreSQL is down for this long
    start_services()


def kill_backends() -> None:
    """pg_terminate_backend of every other connection to the database: the workers' (their
    batches mid-apply included), and this process's own pool, which it drops."""
    with db.session_scope() as session:
        session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    db.get_engine().dispose()


@contextmanager
def every_connection_taken() -> Iterator[int]:
    """Other clients hold every connection slot the server has; yields how many."""
    other = create_engine(
        make_url(get_settings().database_url).set(database="postgres"), poolclass=NullPool
    )
    db.get_engine().dispose()
    held: list[Connection] = []
    try:
        while True:
            try:
                held.append(other.connect())
            except OperationalError:
                break  # "too many clients": every slot is taken
        yield len(held)
    finally:
        for connection in held:
            connection.close()


def exhaust_connections() -> None:
    with every_connection_taken():
        time.sleep(EXHAUSTED_SECONDS)  # the outage itself


def drain_under(fault: Callable[[], None]) -> tuple[float, float]:
    """Start a drain, cause the fault once a fifth is done; returns the fault's length and
    the seconds from its end until the drain went on."""
    drains.WEBHOOKS.request()
    wait_for(
        lambda: count(WebhookEvent, COMPLETED) >= EVENTS // 5,
        timeout=60,
        what="a fifth of the events",
    )
    started = time.monotonic()
    fault()
    ended = time.monotonic()
    return ended - started, time_to_progress(
        lambda: count(WebhookEvent, COMPLETED), ended, total=EVENTS
    )


FAULTS = {
    "redis_restart": ("Redis shut down (nosave) and started again", restart_redis),
    "postgres_restart": ("PostgreSQL stopped (fast) for 2 s and started again", restart_postgres),
    "pg_backend_kill": ("pg_terminate_backend of the workers' connections", kill_backends),
    "pool_exhaustion": (
        f"other clients holding every connection for {EXHAUSTED_SECONDS} s",
        exhaust_connections,
    ),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(FAULTS))
def test_the_drain_goes_on_by_itself_after_the_fault_and_applies_every_event_once(
    name: str,
    session: Session,
    chaos_worker: Callable[..., Worker],
    scenario: Callable[[Scenario], None],
) -> None:
    what, fault = FAULTS[name]
    worker = chaos_worker("default,webhooks", WEBHOOK_BATCH_SIZE=SMALL_BATCHES)

    def fault_free() -> None:
        queue_events(make_agency(session), seed=20, events=EVENTS)
        drains.WEBHOOKS.request()
        wait_for(lambda: count(WebhookEvent, COMPLETED) == EVENTS, timeout=120, what="the drain")
        worker.wait_idle()
        delete_rows()

    base = baseline(f"webhooks {EVENTS:,} in batches of {SMALL_BATCHES}", fault_free)
    calls = queue_events(make_agency(session), seed=21, events=EVENTS)
    session.close()  # its connection may die with the fault
    start = time.monotonic()
    # Celery's worker can die of its own reconnect (kombu's Redis channel closed twice, an
    # AttributeError); a deployment's supervisor starts it again, and so does this test.
    with worker.supervised() as exits:
        _, recovery = drain_under(fault)
        wait_for(lambda: count(WebhookEvent, COMPLETED) == EVENTS, timeout=120, what="every event")
        seconds = time.monotonic() - start
        worker.wait_idle()
    dead = count(WebhookEvent, WebhookEvent.status == ProcessingStatus.failed)
    billed = count(Call, Call.last_event == "call.billed")
    transcripts = count(EnrichmentItem)
    restarted = f"; the worker exited {exits} and was started again" if exits else ""
    row = Scenario(
        name,
        f"{EVENTS:,}-event drain; {what}{restarted}",
        count(WebhookEvent, COMPLETED),
        EVENTS,
        seconds,
        base,
        recovery,
        dead + (calls - billed),
        max(0, transcripts - calls),
    )
    scenario(row)
    assert transcripts == calls
    assert row.ok, row
