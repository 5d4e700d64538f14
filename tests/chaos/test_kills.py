"""Workers killed (kill -9), lost or shut down in the middle of their work, at the settings a
user gets: the work goes on within seconds, nothing is lost, nothing is applied twice."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import db, drains
from app.fakes.ultravox import FakeUltravox, Fault, generate_calls
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
    Scenario,
    baseline,
    count,
    queue_events,
    scalar,
    start_sync,
    time_to_progress,
)
from tests.conftest import delete_rows
from tests.helpers import ApiClient, Worker, events_held, make_agency, wait_for

COMPLETED = WebhookEvent.status == ProcessingStatus.completed


def kill_as_it_goes(
    worker: Worker,
    progress: Callable[[], int],
    total: int,
    in_flight: Callable[[], int],
    kills: int = KILLS,
) -> tuple[list[int], list[float]]:
    """Each time another slice of the work is done, kill the worker while it holds work, and
    start it again at once, as a supervisor would. The worker is frozen (SIGSTOP) to look:
    it is killed if it holds work (`in_flight()`), else let go on. Returns the work held at
    each kill, and the seconds from each kill until the work went on."""
    step = max(1, total // (kills + 2))
    held: list[int] = []
    recoveries: list[float] = []
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

    while len(held) < kills:
        wait_for(frozen_holding_work, timeout=120, what="work in flight to kill", interval=0.005)
        killed_at = time.monotonic()
        worker.kill()
        worker.start()
        recoveries.append(time_to_progress(progress, killed_at, total=total))
        at_start = progress()
    return held, recoveries


def slow_pages(fake: FakeUltravox) -> None:
    """Every page takes 0.2 s to come: a sync long enough to lose a worker in."""
    fake.inject_at_random(1.0, [Fault("slow", params={"seconds": 0.2})], endpoint="calls")


def drain_events(session: Session, seed: int) -> int:
    """Queue every lifecycle event of EVENTS / 4 calls and ask for a drain; returns the calls."""
    calls = queue_events(make_agency(session), seed=seed, events=EVENTS)
    drains.WEBHOOKS.request()
    return calls


def all_applied() -> None:
    wait_for(lambda: count(WebhookEvent, COMPLETED) == EVENTS, timeout=300, what="every event")


@pytest.mark.timeout(600)
def test_repeated_kills_during_a_webhook_drain_lose_no_event_and_apply_none_twice(
    session: Session,
    chaos_worker: Callable[..., Worker],
    scenario: Callable[[Scenario], None],
) -> None:
    worker = chaos_worker("default,webhooks")

    def fault_free() -> None:
        drain_events(session, seed=10)
        all_applied()
        worker.wait_idle()
        delete_rows()

    base = baseline(f"webhooks {EVENTS:,}", fault_free)
    start = time.monotonic()
    calls = drain_events(session, seed=11)
    held, recoveries = kill_as_it_goes(
        worker, lambda: count(WebhookEvent, COMPLETED), EVENTS, in_flight=events_held
    )
    all_applied()
    seconds = time.monotonic() - start
    worker.wait_idle()

    billed = count(Call, Call.last_event == "call.billed", Call.ended.is_not(None))
    transcripts = count(EnrichmentItem, EnrichmentItem.type == EnrichmentType.transcript)
    dead = count(WebhookEvent, WebhookEvent.status == ProcessingStatus.failed)
    row = Scenario(
        "repeated_kills",
        f"webhook drain, {KILLS} kill -9 and restarts (held {held} events)",
        count(WebhookEvent, COMPLETED),
        EVENTS,
        seconds,
        base,
        max(recoveries),
        dead + (calls - billed),
        max(0, transcripts - calls),
    )
    scenario(row)
    assert dead == 0
    assert billed == count(Call) == calls  # each call's final state, whatever the order
    assert transcripts == calls  # call.ended applied once in effect: one trigger firing
    assert count(WebhookEvent, WebhookEvent.attempts > 0) == 0  # a lost run is no attempt
    assert row.ok, row


def sync_job(job_id: uuid.UUID) -> HistoricalSyncJob:
    with db.session_scope() as reader:
        row = reader.get_one(HistoricalSyncJob, job_id)
        reader.expunge(row)
        return row


def sync_finished(job_id: uuid.UUID) -> None:
    wait_for(
        lambda: sync_job(job_id).status != SyncJobStatus.in_progress,
        timeout=300,
        what="the sync to finish",
    )


def sync_row(
    name: str, work: str, job_id: uuid.UUID, fake: FakeUltravox, seconds: float, **row: float
) -> Scenario:
    """The row of a sync scenario: calls stored once each, counters exact."""
    final = sync_job(job_id)
    ended = sum(1 for call in fake.calls if call["ended"] is not None)
    stored = count(Call)
    distinct = int(scalar(select(func.count(func.distinct(Call.ultravox_call_id)))) or 0)
    assert final.status == SyncJobStatus.completed, final.error_message
    assert final.processed_calls == final.total_calls == len(fake.calls)
    assert final.imported_calls == stored == distinct == ended
    return Scenario(
        name,
        work,
        final.processed_calls,
        len(fake.calls),
        seconds,
        row.get("baseline"),
        row.get("recovery"),
        ended - distinct,
        (stored - distinct) + abs(final.imported_calls - ended),
    )


def sync_scenario(
    name: str,
    work: str,
    job_id: uuid.UUID,
    fake: FakeUltravox,
    worker: Worker,
    scenario: Callable[[Scenario], None],
    *,
    start: float,
    **row: float,
) -> None:
    """The fault is over: the sync finishes, and its row joins the table, which must be ok."""
    fake.clear_faults()
    sync_finished(job_id)
    seconds = time.monotonic() - start
    worker.wait_idle()
    done = sync_row(name, f"{len(fake.calls):,}-call sync{work}", job_id, fake, seconds, **row)
    scenario(done)
    assert done.ok, done


def sync_baseline(session: Session, api: ApiClient, worker: Worker) -> float:
    def fault_free() -> None:
        sync_finished(start_sync(api, session))
        worker.wait_idle()
        delete_rows()

    return baseline(f"sync {CALLS:,}", fault_free)


def processed(job_id: uuid.UUID) -> Callable[[], int]:
    return lambda: sync_job(job_id).processed_calls


@pytest.mark.timeout(600)
def test_repeated_kills_during_a_historical_sync_store_every_call_once(
    session: Session,
    chaos_worker: Callable[..., Worker],
    api: ApiClient,
    fake_ultravox: FakeUltravox,
    scenario: Callable[[Scenario], None],
) -> None:
    fake_ultravox.add_calls(generate_calls(CALLS, seed=12))
    worker = chaos_worker("default,sync")
    base = sync_baseline(session, api, worker)
    start = time.monotonic()
    job_id = start_sync(api, session)
    total = len(fake_ultravox.calls)
    progress = processed(job_id)
    held, recoveries = kill_as_it_goes(worker, progress, total, in_flight=progress)
    work = f", {KILLS} kill -9 and restarts (at {held} calls)"
    sync_scenario(
        "repeated_kills",
        work,
        job_id,
        fake_ultravox,
        worker,
        scenario,
        start=start,
        baseline=base,
        recovery=max(recoveries),
    )


@pytest.mark.timeout(300)
def test_one_kill_of_the_whole_worker_restarted_at_once_resumes_the_sync_in_seconds(
    session: Session,
    chaos_worker: Callable[..., Worker],
    api: ApiClient,
    fake_ultravox: FakeUltravox,
    scenario: Callable[[Scenario], None],
) -> None:
    fake_ultravox.add_calls(generate_calls(CALLS, seed=13))
    worker = chaos_worker("default,sync")
    base = sync_baseline(session, api, worker)
    start = time.monotonic()
    job_id = start_sync(api, session)
    progress = processed(job_id)
    _, [recovery] = kill_as_it_goes(worker, progress, CALLS, in_flight=progress, kills=1)
    work = ", one kill -9, restarted at once"
    sync_scenario(
        "crash_recovery",
        work,
        job_id,
        fake_ultravox,
        worker,
        scenario,
        start=start,
        baseline=base,
        recovery=recovery,
    )


@pytest.mark.timeout(300)
def test_the_survivor_of_two_workers_takes_over_the_sync_of_the_one_killed(
    session: Session,
    chaos_worker: Callable[..., Worker],
    api: ApiClient,
    fake_ultravox: FakeUltravox,
    scenario: Callable[[Scenario], None],
) -> None:
    fake_ultravox.add_calls(generate_calls(CALLS, seed=14))
    slow_pages(fake_ultravox)
    first = chaos_worker("default,sync")
    second = chaos_worker("default,sync")
    start = time.monotonic()
    job_id = start_sync(api, session)
    progress = processed(job_id)
    wait_for(lambda: sync_job(job_id).worker_id is not None, what="a worker to run the sync")
    holder = sync_job(job_id).worker_id
    doomed, survivor = (
        (first, second) if holder and holder.startswith(first.name) else (second, first)
    )
    killed_at = time.monotonic()
    doomed.kill()  # and never started again: the machine is gone
    recovery = time_to_progress(progress, killed_at, total=len(fake_ultravox.calls))
    work = " on two workers, one killed for good"
    sync_scenario(
        "worker_loss",
        work,
        job_id,
        fake_ultravox,
        survivor,
        scenario,
        start=start,
        recovery=recovery,
    )


@pytest.mark.timeout(300)
def test_a_warm_shutdown_mid_sync_leaves_nothing_waiting_for_the_next_worker(
    session: Session,
    chaos_worker: Callable[..., Worker],
    api: ApiClient,
    fake_ultravox: FakeUltravox,
    scenario: Callable[[Scenario], None],
) -> None:
    fake_ultravox.add_calls(generate_calls(CALLS, seed=15))
    slow_pages(fake_ultravox)
    old = chaos_worker("default,sync")
    start = time.monotonic()
    job_id = start_sync(api, session)
    progress = processed(job_id)
    wait_for(lambda: progress() > 0, what="the sync to be under way")
    stopped_at = time.monotonic()
    old.stop()  # SIGTERM, as a deploy sends: it finishes its page and hands the job on
    new = chaos_worker("default,sync")  # the new release
    recovery = time_to_progress(progress, stopped_at, total=len(fake_ultravox.calls))
    work = ", SIGTERM then a new worker (a deploy)"
    sync_scenario(
        "warm_shutdown", work, job_id, fake_ultravox, new, scenario, start=start, recovery=recovery
    )
