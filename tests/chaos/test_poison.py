"""A webhook event whose apply kills its worker, again and again: after MAX_LOST_RUNS lost runs
it is dead with its reason, the rest of its batch is applied, and nothing is applied twice."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from app import db, drains
from app.config import get_settings
from app.fakes.ultravox import call_at, generate_calls
from app.models import Call, EnrichmentItem, ProcessingStatus, WebhookEvent
from tests.chaos.conftest import EVENTS, LIFECYCLE, Scenario, count, scalar, time_to_progress
from tests.helpers import Worker, make_agency, wait_for

POISON_AGENT = "poison"
# The apply of a call from the poison agent never ends: the worker hangs in it until it is
# killed, as an OOM kill or an operator would end a process that stopped answering.
HANG = """
CREATE FUNCTION chaos_hang() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.agent_id = 'poison' THEN
        PERFORM pg_sleep(3600);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER chaos_hang BEFORE INSERT OR UPDATE ON calls
    FOR EACH ROW EXECUTE FUNCTION chaos_hang();
"""
HUNG = text(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'"
)


@pytest.fixture
def hanging_apply() -> Iterator[None]:
    with db.session_scope() as session:
        session.execute(text(HANG))
    yield
    with db.session_scope() as session:
        for pid in session.scalars(HUNG).all():  # a hang the test left behind
            session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        session.execute(text("DROP TRIGGER chaos_hang ON calls; DROP FUNCTION chaos_hang()"))


def queue_with_poison(agency: uuid.UUID) -> tuple[int, uuid.UUID]:
    """EVENTS lifecycle events and a poison one among them, in one statement (one created_at:
    the poison shares a batch with others); returns the calls and the poison event."""
    calls = generate_calls(EVENTS // len(LIFECYCLE), seed=31, live_every=0)
    [poison_call] = generate_calls(1, seed=32, live_every=0)
    poison_call["agentId"] = POISON_AGENT
    events = [(poison_call, "call.started")] + [(c, e) for c in calls for e in LIFECYCLE]
    rows = [
        {"agency_id": agency, "event_type": e, "payload": {"event": e, "call": call_at(c, e)}}
        for c, e in events
    ]
    with db.session_scope() as setup:
        ids = setup.scalars(insert(WebhookEvent).values(rows).returning(WebhookEvent.id)).all()
    return len(calls), ids[0]


@pytest.mark.timeout(300)
def test_an_event_that_kills_its_worker_ends_dead_and_the_rest_is_applied_once(
    session: Session,
    chaos_worker: Callable[..., Worker],
    hanging_apply: None,
    scenario: Callable[[Scenario], None],
) -> None:
    calls, poison = queue_with_poison(make_agency(session))
    worker = chaos_worker("default,webhooks")
    completed = WebhookEvent.status == ProcessingStatus.completed

    def finished() -> bool:
        dead = scalar(select(WebhookEvent.status).where(WebhookEvent.id == poison))
        return dead == ProcessingStatus.failed and count(WebhookEvent, completed) == EVENTS

    def hung() -> bool:
        with db.session_scope() as probe:
            return bool(probe.scalars(HUNG).all())

    def progress() -> int:
        return count(WebhookEvent, completed) + hung()

    start = time.monotonic()
    kills, recoveries, killed_at = 0, [], 0.0
    drains.WEBHOOKS.request()
    while True:
        if kills:  # from the kill until the work went on: events applied, or the poison's turn
            recoveries.append(time_to_progress(progress, killed_at, total=EVENTS + 1))
        wait_for(lambda: hung() or finished(), timeout=120, what="a hang, or the end")
        if finished():
            break
        # Killed and started again, as a supervisor would. Its statement runs on in
        # PostgreSQL, holding its locks, until the rescue ends the dead worker's sessions.
        killed_at = time.monotonic()
        worker.kill()
        worker.start()
        kills += 1
    seconds = time.monotonic() - start
    worker.wait_idle()

    with db.session_scope() as reader:
        dead = reader.get_one(WebhookEvent, poison)
        reason, lost_runs = dead.error_message, dead.lost_runs
    transcripts = count(EnrichmentItem)
    billed = count(Call, Call.last_event == "call.billed")
    row = Scenario(
        "poison",
        f"{EVENTS:,}-event drain with one event whose apply hangs its worker until killed "
        f"({kills} kills; it ended: {reason})",
        count(WebhookEvent, completed),
        EVENTS,
        seconds,
        None,
        max(recoveries),
        calls - billed,
        max(0, transcripts - calls),
    )
    scenario(row)
    max_lost_runs = get_settings().max_lost_runs
    assert (kills, lost_runs, reason) == (max_lost_runs, max_lost_runs, "worker lost 3 times")
    assert row.ok, row
