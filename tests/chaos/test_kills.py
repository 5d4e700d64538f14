"""kill -9 of the worker mid-batch, again and again: nothing lost, nothing applied twice."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import db, drains
from app.fakes.ultravox import FakeUltravox, generate_calls
from app.models import (
    Call,
    EnrichmentItem,
    EnrichmentType,
    HistoricalSyncJob,
    ProcessingStatus,
    SyncJobStatus,
    WebhookEvent,
)
from tests.chaos.conftest import (
    CALLS,
    EVENTS,
    KILLS,
    count,
    queue_events,
    scalar,
    start_sync,
    ticking_until,
)
from tests.helpers import ApiClient, Worker, events_held, make_agency


def kill_as_it_goes(
    worker: Worker,
    entry: str,
    progress: Callable[[], int],
    total: int,
    in_flight: Callable[[], int],
) -> list[int]:
    """Each time another slice of the work is done, kill the worker while it holds work, and
    start it again; beat's `entry` ticks meanwhile. The worker is frozen (SIGSTOP) to look:
    it is killed if it holds work (`in_flight()`), else let go on. Returns the work held at
    each kill."""
    step = max(1, total // (KILLS + 2))
    held: list[int] = []
    at_start = progress()

    def frozen_holding_work() -> bool:
        done = progress()
        if done < (len(held) + 1) * step or done == at_start:  # working since its start
            return False
        worker.freeze()
        if caught := in_flight():
            held.append(caught)
            return True
        worker.thaw()
        return False

    while len(held) < KILLS:
        ticking_until(
            entry, frozen_holding_work, timeout=120, what="work in flight to kill", interval=0.005
        )
        worker.kill()
        worker.start()
        at_start = progress()
    return held


@pytest.mark.timeout(600)
def test_kill_9_during_a_webhook_drain_loses_no_event_and_applies_none_twice(
    session: Session, chaos_worker: Callable[..., Worker], report: Callable[..., None]
) -> None:
    calls = queue_events(make_agency(session), seed=11, events=EVENTS)
    worker = chaos_worker("default,webhooks")
    drains.WEBHOOKS.request()
    completed = WebhookEvent.status == ProcessingStatus.completed
    held = kill_as_it_goes(
        worker,
        "process-webhook-queue",
        progress=lambda: count(WebhookEvent, completed),
        total=EVENTS,
        in_flight=events_held,
    )
    ticks = ticking_until(
        "process-webhook-queue",
        lambda: count(WebhookEvent, completed) == EVENTS,
        timeout=300,
        what="every event to be applied",
    )
    worker.wait_idle()

    stored = count(Call)
    billed = count(Call, Call.last_event == "call.billed", Call.ended.is_not(None))
    transcripts = count(EnrichmentItem, EnrichmentItem.type == EnrichmentType.transcript)
    retried = count(WebhookEvent, WebhookEvent.attempts > 0)
    dead = count(WebhookEvent, WebhookEvent.status == ProcessingStatus.failed)
    report(
        "kill -9 mid webhook drain",
        f"{KILLS} kills during {EVENTS:,} events; events held by the killed batches: {held}",
        f"{EVENTS:,} completed, {dead} dead; {stored:,} calls, all at call.billed: "
        f"{billed == calls}; {transcripts:,} transcript items (once per call); "
        f"{retried:,} attempts counted (the killed batches rolled back); {ticks} ticks after "
        "the last kill",
        stored == billed == transcripts == calls and dead == retried == 0,
    )
    assert dead == 0
    assert stored == calls
    assert billed == calls  # each call's final state, whatever order its batches ran in
    assert transcripts == calls  # call.ended applied once in effect: one trigger firing
    assert retried == 0  # a killed batch rolls back whole: it costs its events no attempt


@pytest.mark.timeout(600)
def test_kill_9_during_a_historical_sync_stores_every_call_once_with_exact_counters(
    session: Session,
    chaos_worker: Callable[..., Worker],
    api: ApiClient,
    fake_ultravox: FakeUltravox,
    report: Callable[..., None],
) -> None:
    fake_ultravox.add_calls(generate_calls(CALLS, seed=12))
    worker = chaos_worker("default,sync")
    job_id = start_sync(api, session)

    def job() -> HistoricalSyncJob:
        with db.session_scope() as reader:
            row = reader.get_one(HistoricalSyncJob, job_id)
            reader.expunge(row)
            return row

    total = len(fake_ultravox.calls)
    held = kill_as_it_goes(
        worker,
        "process-historical-sync",
        progress=lambda: job().processed_calls,
        total=total,
        in_flight=lambda: job().processed_calls,
    )
    ticks = ticking_until(
        "process-historical-sync",
        lambda: job().status != SyncJobStatus.in_progress,
        timeout=300,
        what="the job to finish",
    )
    worker.wait_idle()

    final = job()
    ended = sum(1 for call in fake_ultravox.calls if call["ended"] is not None)
    stored = count(Call)
    distinct = int(scalar(select(func.count(func.distinct(Call.ultravox_call_id)))) or 0)
    pages = [q.get("cursor") for _, path, q in fake_ultravox.requests_seen if path == "/api/calls"]
    report(
        "kill -9 mid historical sync",
        f"{KILLS} kills during a {total:,}-call import, at {held} calls processed",
        f"job {final.status.value}: processed {final.processed_calls:,} of "
        f"{final.total_calls:,}, imported {final.imported_calls:,}, skipped "
        f"{final.skipped_calls:,}; {stored:,} calls stored ({distinct:,} distinct); "
        f"{len(pages) - len(set(pages))} pages fetched again after a kill; {ticks} ticks",
        final.status == SyncJobStatus.completed
        and stored == distinct == ended
        and final.imported_calls == ended
        and final.processed_calls == total,
    )
    assert final.status == SyncJobStatus.completed
    assert final.processed_calls == final.total_calls == total
    assert final.imported_calls == stored == distinct == ended
    assert final.skipped_calls == total - ended
