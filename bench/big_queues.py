"""Cost as work grows: a drain of new webhook events, and of new transcripts, with 2,000,000
completed and 200,000 dead rows already in their queue, beside the same drain of an empty
queue, in the same run. Claims follow the partial indexes of the due rows, so the finished
rows should cost the drain (almost) nothing.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select, text

from bench import enrichment, webhooks
from bench.environment import LOG_DIR, Environment, celery_worker, met

COMPLETED = 2_000_000
DEAD = 200_000
GOAL_RATIO = 0.8  # the drain on a full queue at least 80% as fast as on an empty one

Row = tuple[str, ...]


def run(env: Environment, *, events: int, transcripts: int) -> list[Row]:
    agency = webhooks._agency()
    empty_events = _drain_events(agency, events)
    _fill(agency, WEBHOOK_FILL)
    full_events = _drain_events(agency, events)
    _forget_queued_transcripts()
    empty_items = _drain_transcripts(env, transcripts)
    _fill(agency, ENRICHMENT_FILL)
    full_items = _drain_transcripts(env, transcripts)
    finished = f"{COMPLETED:,} completed + {DEAD:,} dead"
    rows: list[Row] = [("drain", "queue holds", "items/s", "ratio to empty", "goal", "met")]
    for name, empty, full in (
        (f"webhook events, batches of 200 ({events:,})", empty_events, full_events),
        (f"transcripts, one worker ({transcripts:,})", empty_items, full_items),
    ):
        ratio = full / empty
        rows.append((name, "nothing else", f"{empty:,.0f}", "", "", ""))
        rows.append(
            (
                name,
                finished,
                f"{full:,.0f}",
                f"{ratio:.2f}",
                f">= {GOAL_RATIO}",
                met(ratio >= GOAL_RATIO),
            )
        )
    return rows


def _drain_events(agency: uuid.UUID, events: int) -> float:
    """Events per second for a drain of `events` new events, whatever the queue held."""
    from app import db, drains
    from app.models import ProcessingStatus, WebhookEvent

    pending = select(WebhookEvent.id).where(WebhookEvent.status == ProcessingStatus.pending)
    webhooks._queue_events(agency, events)
    with webhooks._worker(batch_size=200):
        started = time.perf_counter()
        drains.WEBHOOKS.request()
        while True:
            with db.session_scope() as session:
                if session.scalar(pending.order_by(WebhookEvent.created_at).limit(1)) is None:
                    break
            time.sleep(0.02)
        return events / (time.perf_counter() - started)


def _drain_transcripts(env: Environment, transcripts: int) -> float:
    """Transcripts per second for `transcripts` new ended calls, as bench/enrichment drains
    them (one worker of 2 processes, the fake Ultravox answering after 100 ms)."""
    from app import processes
    from app.fakes.ultravox import generate_calls

    calls = generate_calls(transcripts, live_every=0)
    worker = celery_worker(concurrency=2, queues="enrichment")
    with (
        enrichment._fake_ultravox(env, transcripts),
        processes.child("enrichment-worker", worker, log_dir=LOG_DIR, ready=_ready),
    ):
        drained, _ = enrichment._drains(calls)
    return transcripts / drained


def _ready(log: str) -> bool:
    return " ready." in log


def _forget_queued_transcripts() -> None:
    """The transcripts the drained call.ended events queued: not part of this measure."""
    from app import db

    with db.session_scope() as session:
        session.execute(text("DELETE FROM enrichment_queue"))


def _fill(agency: uuid.UUID, statements: list[str]) -> None:
    """COMPLETED finished and DEAD dead rows in a queue, vacuumed and checkpointed."""
    from app import db

    params = {"agency": agency, "completed": COMPLETED, "dead": DEAD}
    with db.session_scope() as session:
        for statement in statements:
            session.execute(text(statement), params)
    # What autovacuum and the checkpointer would have done by the time such rows are old: the
    # drain is measured on settled tables, not while the fill's pages are still being written.
    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM (ANALYZE) webhook_queue, enrichment_queue, calls"))
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
# On calls of their own, not ended, so that no trigger queues more.
ENRICHMENT_FILL = [
    """INSERT INTO calls (agency_id, ultravox_call_id, raw)
       SELECT :agency, uuid_generate_v4(), '{}'
       FROM generate_series(1, (:completed + :dead) / 2)""",
    """INSERT INTO enrichment_queue (call_id, type, status, attempts, processed_at,
                                     error_message)
       SELECT c.id, t.type, CAST(CASE WHEN c.n <= :dead / 2 THEN 'failed' ELSE 'completed' END
                                 AS processing_status),
              CASE WHEN c.n <= :dead / 2 THEN 3 ELSE 1 END, now(),
              CASE WHEN c.n <= :dead / 2 THEN 'dead' END
       FROM (SELECT id, row_number() OVER () AS n FROM calls WHERE agency_id = :agency
             AND ended IS NULL) AS c,
            (VALUES ('transcript'::enrichment_type), ('analysis')) AS t(type)""",
]
