"""Ultravox failing one request in ten (429, 5xx, timeouts, malformed bodies) through a whole
import and its enrichment: all the work completes, and every failure's reason is logged."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import db
from app.enrichment import queries as enrichment_queries
from app.fakes.ultravox import FakeUltravox, Fault, generate_calls
from app.models import Call, EnrichmentItem, HistoricalSyncJob, ProcessingStatus, SyncJobStatus
from tests.chaos.conftest import FULL, count, scalar, start_sync, tick, wait_for_quietly
from tests.helpers import ApiClient, Worker, wait_for

CALLS = 5_000 if FULL else 1_000
RATE = 0.10
# Retries come due by their backoff, which beat's minute ticks pick up: here the backoff and
# the timeout are seconds and the test ticks, so that a few hours of retries fit in a minute.
# Nothing that recovers a lost worker is changed.
FAST_RETRIES = {
    "RETRY_BASE_SECONDS": "0.2",
    "RETRY_MAX_SECONDS": "1",
    "ULTRAVOX_TIMEOUT_SECONDS": "1",
}
# A timeout is an answer slower than ULTRAVOX_TIMEOUT_SECONDS.
TRANSIENT = [
    Fault("429", params={"retry_after": 0}),
    Fault("503"),
    Fault("slow", params={"seconds": 1.5}),
]
# How each kind shows in the worker's log.
REASONS = {"429": "429", "5xx": "503", "slow": "no answer within 1s", "malformed": "malformed"}


def ticking_until(entry: str, done: Callable[[], bool], *, timeout: float) -> None:
    """Tick `entry` once a second, standing for beat's minutes, until `done()`."""

    def tick_then_check() -> bool:
        if done():
            return True
        tick(entry)
        return wait_for_quietly(done, 1.0)

    wait_for(tick_then_check, timeout=timeout, what="all the work")


@pytest.mark.timeout(600)
def test_one_request_in_ten_failing_still_completes_all_the_work(
    session: Session,
    api: ApiClient,
    fake_ultravox: FakeUltravox,
    chaos_worker: Callable[..., Worker],
    report: Callable[..., None],
) -> None:
    fake_ultravox.add_calls(generate_calls(CALLS, seed=41))
    # A malformed page fails its sync job by design; on the messages endpoint it fails only
    # that item's attempt, which is retried.
    fake_ultravox.inject_at_random(RATE, TRANSIENT, endpoint="calls", seed=1)
    fake_ultravox.inject_at_random(
        RATE, [*TRANSIENT, Fault("malformed")], endpoint="messages", seed=2
    )
    worker = chaos_worker("default,sync,enrichment", **FAST_RETRIES)
    start_sync(api, session)
    replayed = 0

    def all_done() -> bool:
        # One item in tens of thousands draws a malformed page on all its 3 attempts and dies;
        # it is replayed, as `callsync enrichment replay --all` would.
        nonlocal replayed
        with db.session_scope() as operator:
            replayed += enrichment_queries.replay_dead(operator).total()
        finished = (SyncJobStatus.completed, SyncJobStatus.failed)
        job_done = scalar(select(HistoricalSyncJob.status)) in finished
        open_items = count(EnrichmentItem, EnrichmentItem.status != ProcessingStatus.completed)
        return job_done and open_items == 0 and count(Call, Call.analysis.is_(None)) == 0

    ticking_until("process-enrichment-queue", all_done, timeout=500)
    fake_ultravox.clear_faults()
    worker.wait_idle()

    job = scalar(select(HistoricalSyncJob))
    ended = sum(1 for call in fake_ultravox.calls if call["ended"] is not None)
    retried_items = count(EnrichmentItem, EnrichmentItem.attempts > 0)
    log = worker.log_path.read_text()
    injected = dict(
        sorted((f"{endpoint} {kind}", n) for (endpoint, kind), n in fake_ultravox.injected.items())
    )
    found = {kind: log.count(reason) for kind, reason in REASONS.items()}
    requests = len(fake_ultravox.requests_seen)
    report(
        "Ultravox faults on 10% of requests",
        f"{sum(injected.values())} faults in {requests:,} requests: {injected}",
        f"job {job.status.value}, {job.imported_calls:,} of {ended:,} ended calls imported; "
        f"{count(Call, Call.analysis.is_not(None)):,} transcribed and analysed; "
        f"{retried_items} items needed another attempt, {replayed} replayed after 3; log lines "
        f"naming each reason: {found}",
        job.status == SyncJobStatus.completed and all(found.values()),
    )
    assert job.status == SyncJobStatus.completed
    assert job.imported_calls == ended == count(Call)
    assert count(Call, Call.transcript_fetched_at.is_not(None)) == ended
    assert int(scalar(select(func.count()).select_from(EnrichmentItem))) == 2 * ended
    assert all(found.values()), f"a failure without its reason in the log: {found}"


@pytest.mark.timeout(300)
def test_at_the_default_settings_a_transient_fault_is_retried_within_its_request(
    session: Session,
    api: ApiClient,
    fake_ultravox: FakeUltravox,
    chaos_worker: Callable[..., Worker],
) -> None:
    """No setting changed and no tick: 429s and 503s on one request in twenty are tried again
    inside the request (HTTP_RETRY_ATTEMPTS), answers that come 1.5 s late are waited for
    (ULTRAVOX_TIMEOUT_SECONDS, 30 s, where the test above cuts them at 1 s), and the import and
    its enrichment complete without a single queue attempt spent."""
    fake_ultravox.add_calls(generate_calls(300, seed=43))
    within_the_request = TRANSIENT
    fake_ultravox.inject_at_random(0.05, within_the_request, endpoint="calls", seed=3)
    fake_ultravox.inject_at_random(0.05, within_the_request, endpoint="messages", seed=4)
    worker = chaos_worker("default,sync,enrichment")
    start_sync(api, session)

    def all_done() -> bool:
        job_done = scalar(select(HistoricalSyncJob.status)) == SyncJobStatus.completed
        open_items = count(EnrichmentItem, EnrichmentItem.status != ProcessingStatus.completed)
        return job_done and open_items == 0 and count(Call, Call.analysis.is_(None)) == 0

    wait_for(all_done, timeout=240, what="all the work, at the default settings")
    fake_ultravox.clear_faults()
    worker.wait_idle()
    kinds = {kind for _, kind in fake_ultravox.injected}
    assert kinds == {"429", "5xx", "slow"}, fake_ultravox.injected
    assert count(EnrichmentItem, EnrichmentItem.attempts > 0) == 0
    ended = sum(1 for call in fake_ultravox.calls if call["ended"] is not None)
    assert count(Call, Call.analysis.is_not(None)) == ended


@pytest.mark.timeout(300)
def test_at_the_default_settings_a_malformed_answer_costs_one_attempt_retried_after_30_s(
    session: Session,
    api: ApiClient,
    fake_ultravox: FakeUltravox,
    chaos_worker: Callable[..., Worker],
) -> None:
    """No setting changed: a malformed messages answer fails that item's attempt alone, with
    its reason, and schedules its retry by the default backoff (RETRY_BASE_SECONDS, 30 s, plus
    up to half again); every other item completes meanwhile. (That a retry which came due is
    taken and completes is the test above's, where the backoff is seconds.)"""
    fake_ultravox.add_calls(generate_calls(40, seed=44))
    fake_ultravox.inject("malformed", endpoint="messages")
    worker = chaos_worker("default,sync,enrichment")
    start_sync(api, session)
    failed = EnrichmentItem.status == ProcessingStatus.failed

    def settled() -> bool:
        job_done = scalar(select(HistoricalSyncJob.status)) == SyncJobStatus.completed
        in_flight = (ProcessingStatus.pending, ProcessingStatus.processing)
        return job_done and count(EnrichmentItem, EnrichmentItem.status.in_(in_flight)) == 0

    wait_for(settled, timeout=120, what="every item done or failed, at the default settings")
    worker.wait_idle()
    item = session.execute(
        select(
            EnrichmentItem.attempts,
            EnrichmentItem.error_message,
            func.extract("epoch", EnrichmentItem.next_retry_at - func.now()).label("due_in"),
        ).where(failed)
    ).one()
    assert item.attempts == 1
    assert "malformed" in (item.error_message or ""), item.error_message
    assert 15 < item.due_in <= 45, item.due_in  # failed at most a few seconds ago
    assert count(EnrichmentItem, EnrichmentItem.status == ProcessingStatus.completed) == (
        count(EnrichmentItem) - 1
    )
