"""Cost as work grows: a drain of new webhook events, and of new transcripts, with 2,000,000
completed and 200,000 dead rows already in their queue, beside the same drain of an empty
queue, in the same run.

Claims follow the partial indexes of the due rows, planned so however stale the statistics
(tests/integration/test_claim_plans.py), so what the finished rows may still cost is the
upkeep of the indexes over every row. The transcripts come from a fake Ultravox without its
rate limits and with the budget lifted (answers after 100 ms), so that the drain's pace is
the database's and the worker's, not the provider's 200 requests/s per key.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from app import processes
from app.fakes.ultravox import generate_calls
from bench import enrichment, webhooks
from bench.environment import (
    LOG_DIR,
    Environment,
    celery_worker,
    fake_ultravox,
    forget_enrichment,
    met,
)

COMPLETED = 2_000_000
DEAD = 200_000
GOAL_RATIO = 0.8  # the drain on a full queue at least 80% as fast as on an empty one
# The worker's Ultravox budget, lifted: the fake's limits are off too.
UNBUDGETED = {
    "ULTRAVOX_RATE_LIMIT_PER_KEY": "1000000000",
    "ULTRAVOX_RATE_LIMIT_PER_ACCOUNT": "1000000000",
}

Row = tuple[str, ...]


def run(env: Environment, *, events: int, transcripts: int) -> list[Row]:
    agency = webhooks._agency()
    empty_events = _drain_events(agency, events)
    _fill(agency, WEBHOOK_FILL, "webhook_queue")
    full_events = _drain_events(agency, events)
    forget_enrichment()  # the transcripts that the drained call.ended events queued
    empty_items = _drain_transcripts(env, transcripts)
    _fill(agency, ENRICHMENT_FILL, "enrichment_queue, calls")
    full_items = _drain_transcripts(env, transcripts)
    rows: list[Row] = [("drain", "queue holds", "items/s", "ratio to empty", "goal", "met")]
    for name, empty, full in (
        (f"webhook events, batches of 200 ({events:,})", empty_events, full_events),
        (f"transcripts and analyses of {transcripts:,} calls", empty_items, full_items),
    ):
        ratio = full / empty
        rows.append((name, "nothing else", f"{empty:,.0f}", "", "", ""))
        rows.append(
            (
                name,
                f"{COMPLETED:,} completed + {DEAD:,} dead",
                f"{full:,.0f}",
                f"{ratio:.2f}",
                f">= {GOAL_RATIO}",
                met(ratio >= GOAL_RATIO),
            )
        )
    return rows


def _drain_events(agency: uuid.UUID, events: int) -> float:
    """Events per second for a drain of `events` new events, whatever the queue held."""
    from app import drains

    webhooks._queue_events(agency, events)
    with webhooks._worker(batch_size=200):
        started = time.perf_counter()
        drains.WEBHOOKS.request()
        while not webhooks.none_pending():
            time.sleep(0.02)
        return events / (time.perf_counter() - started)


def _drain_transcripts(env: Environment, transcripts: int) -> float:
    """Items per second (a transcript and an analysis per call) for `transcripts` new ended
    calls of a new agency, one worker of 2 processes, whatever the queue held."""
    from app import drains

    calls = generate_calls(transcripts, live_every=0)
    worker = celery_worker(concurrency=2, queues="enrichment")
    with (
        _unlimited_ultravox(env, transcripts),
        processes.child(
            "enrichment-worker",
            worker,
            log_dir=LOG_DIR,
            ready=lambda log: " ready." in log,
            env=os.environ | UNBUDGETED,
        ),
    ):
        agency = enrichment._store_calls(f"bench: big queues {uuid.uuid4()}", calls)
        started = time.perf_counter()
        drains.ENRICHMENT.request()
        while _unfinished(agency):
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    left = _not_completed(agency)
    if left:
        raise SystemExit(f"enrichment left {left} items of agency {agency} unfinished")
    return 2 * transcripts / elapsed


@contextmanager
def _unlimited_ultravox(env: Environment, calls: int) -> Iterator[None]:
    latency = str(enrichment.LATENCY_SECONDS)
    command = fake_ultravox(env, calls, "--latency", latency, "--no-limits")
    with processes.child(
        "fake-ultravox-unlimited", command, log_dir=LOG_DIR, ready=lambda log: "serving" in log
    ):
        yield


def _unfinished(agency: uuid.UUID) -> bool:
    """An item of the agency is pending or in flight (the two small statuses' indexes)."""
    from app import db

    with db.session_scope() as session:
        return bool(session.scalar(UNFINISHED, {"agency": agency}))


def _not_completed(agency: uuid.UUID) -> int:
    """The agency's items that are not completed, or missing (a transcript and an analysis
    per call)."""
    from app import db

    with db.session_scope() as session:
        return int(session.scalar(NOT_COMPLETED, {"agency": agency}) or 0)


UNFINISHED = text(
    """SELECT EXISTS (SELECT FROM enrichment_queue WHERE agency_id = :agency
                      AND status = 'pending')
           OR EXISTS (SELECT FROM enrichment_queue WHERE agency_id = :agency
                      AND status = 'processing')"""
)
NOT_COMPLETED = text(
    """SELECT 2 * (SELECT count(*) FROM calls WHERE agency_id = :agency)
              - count(*) FILTER (WHERE status = 'completed')
       FROM enrichment_queue WHERE agency_id = :agency"""
)


def _fill(agency: uuid.UUID, statements: list[str], tables: str) -> None:
    """COMPLETED finished and DEAD dead rows in a queue, vacuumed and checkpointed."""
    from app import db

    params = {"agency": agency, "completed": COMPLETED, "dead": DEAD}
    with db.session_scope() as session:
        for statement in statements:
            session.execute(text(statement), params)
    # What autovacuum and the checkpointer would have done by the time such rows are old: the
    # drain is measured on settled tables, not while the fill's pages are still being written.
    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM (ANALYZE) {tables}"))
        connection.execute(text("CHECKPOINT"))


WEBHOOK_FILL = [
    """INSERT INTO webhook_queue (agency_id, event_type, payload, status, attempts, created_at,
                                  processed_at)
       SELECT :agency, 'call.ended', '{}', 'completed', 1, now() - interval '2 days', now()
       FROM generate_series(1, :completed)""",
    """INSERT INTO webhook_queue (agency_id, event_type, payload, status, attempts, created_at,
                                  error_message)
       SELECT :agency, 'call.ended', '{}', 'failed', 5, now() - interval '1 day', 'dead'
       FROM generate_series(1, :dead)""",
]
# A transcript and an analysis for each of (COMPLETED + DEAD) / 2 calls of their own, not
# ended, so that no trigger queues more.
ENRICHMENT_FILL = [
    """INSERT INTO calls (agency_id, ultravox_call_id, raw)
       SELECT :agency, uuid_generate_v4(), '{}'
       FROM generate_series(1, (:completed + :dead) / 2)""",
    """INSERT INTO enrichment_queue (call_id, agency_id, type, status, attempts, created_at,
                                     processed_at, error_message)
       SELECT c.id, :agency, t.type,
              CAST(CASE WHEN c.n <= :dead / 2 THEN 'failed' ELSE 'completed' END
                   AS processing_status),
              CASE WHEN c.n <= :dead / 2 THEN 3 ELSE 1 END, now() - interval '2 days', now(),
              CASE WHEN c.n <= :dead / 2 THEN 'dead' END
       FROM (SELECT id, row_number() OVER () AS n FROM calls
             WHERE agency_id = :agency AND ended IS NULL) AS c,
            (VALUES ('transcript'::enrichment_type), ('analysis')) AS t(type)""",
]
