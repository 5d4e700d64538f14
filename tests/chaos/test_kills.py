"""kill -9 of the worker mid-batch, again and again: nothing lost, nothing applied twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import db
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
from app.webhooks import tasks as webhook_tasks
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
from tests.helpers import ApiClient, Worker, make_agency


def kill_as_it_goes(
    worker: Worker, entry: str, progress: Callable[[], int], total: int,
    in_flight: Callable[[datetime], int],
) -> list[int]:  # fmt: skip
    """Kill the worker each time another slice of the work is done, and start it again; beat's
    `entry` ticks meanwhile. `in_flight(since)` is the work the worker started since `since`
    holds; returns it at each kill."""
    step = max(1, total // (KILLS + 2))
    held = []
    for kill in range(1, KILLS + 1):
        since = scalar(select(func.now()))
        ticking_until(entry, lambda k=kill, t=since: progress() >= k * step and in_flight(t) > 0,  # type: ignore[misc]
                      timeout=120, what=f"work in flight before kill {kill}")  # fmt: skip
        worker.kill()
        held.append(in_flight(since))
        worker.start()
    return held


@pytest.mark.timeout(600)
def test_kill_9_during_a_webhook_drain_loses_no_event_and_applies_none_twice(
    session: Session, chaos_worker: Callable[..., Worker], report: Callable[..., None]
) -> None:
    calls = queue_events(make_agency(session), seed=11, events=EVENTS)
    worker = chaos_worker("default,webhooks")
    webhook_tasks.request_drain()
    completed = WebhookEvent.status == ProcessingStatus.completed
    held = kill_as_it_goes(
        worker,
        "process-webhook-queue",
        progress=lambda: count(WebhookEvent, completed),
        total=EVENTS,
        in_flight=lambda since: count(
            WebhookEvent,
            WebhookEvent.status == ProcessingStatus.processing,
            WebhookEvent.processing_started_at >= since,
        ),
    )
    ticks = ticking_until(
        "process-webhook-queue", lambda: count(WebhookEvent, completed) == EVENTS,
        timeout=300, what="every event to be applied",
    )  # fmt: skip
    worker.wait_idle()

    stored = count(Call)
    billed = count(Call, Call.last_event == "call.billed", Call.ended.is_not(None))
    transcripts = count(EnrichmentItem, EnrichmentItem.type == EnrichmentType.transcript)
    retried = count(WebhookEvent, WebhookEvent.attempts > 0)
    dead = count(WebhookEvent, WebhookEvent.status == ProcessingStatus.failed)
    report(
        "kill -9 mid webhook drain",
        f"{KILLS} kills during {EVENTS:,} events; events in flight at each kill: {held}",
        f"{EVENTS:,} completed, {dead} dead; {stored:,} calls, all at call.billed: "
        f"{billed == calls}; {transcripts:,} transcript items (once per call); "
        f"{retried:,} events re-run after a lost lease; {ticks} ticks after the last kill",
        sum(map(bool, held)) > KILLS // 2
        and stored == billed == transcripts == calls
        and dead == 0,
    )
    # A batch may finish between the look and the kill; most kills land mid-batch.
    assert sum(map(bool, held)) > KILLS // 2, f"kills that hit a batch in flight: {held}"
    assert dead == 0
    assert stored == calls
    assert billed == calls  # each call's final state, whatever order its batches ran in
    assert transcripts == calls  # call.ended applied once in effect: one trigger firing
    assert 0 < retried <= sum(held)


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
        in_flight=lambda _: job().processed_calls,
    )
    ticks = ticking_until(
        "process-historical-sync", lambda: job().status != SyncJobStatus.in_progress,
        timeout=300, what="the job to finish",
    )  # fmt: skip
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
        final.status == SyncJobStatus.completed and stored == distinct == ended
        and final.imported_calls == ended and final.processed_calls == total,
    )  # fmt: skip
    assert final.status == SyncJobStatus.completed
    assert final.processed_calls == final.total_calls == total
    assert final.imported_calls == stored == distinct == ended
    assert final.skipped_calls == total - ended
