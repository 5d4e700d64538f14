"""Cost as work grows: a drain of new webhook events with 2,000,000 completed and 200,000 dead
rows already in webhook_queue, beside the same drain of an empty queue, in the same run.

Claims follow the partial indexes of the due rows (tests/integration/test_claim_plans.py), so
what the finished rows cost is the upkeep of the indexes over every row. The enrichment drain
is left out: its pace is the provider's budget (200 requests/s per key), not the database's.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import text

from bench import webhooks
from bench.environment import met

COMPLETED = 2_000_000
DEAD = 200_000
GOAL_RATIO = 0.8  # the drain on a full queue at least 80% as fast as on an empty one

Row = tuple[str, ...]


def run(*, events: int) -> list[Row]:
    agency = webhooks._agency()
    empty = _drain_events(agency, events)
    _fill(agency, WEBHOOK_FILL)
    full = _drain_events(agency, events)
    ratio = full / empty
    name = f"webhook events, batches of 200 ({events:,})"
    return [
        ("drain", "queue holds", "events/s", "ratio to empty", "goal", "met"),
        (name, "nothing else", f"{empty:,.0f}", "", "", ""),
        (
            name,
            f"{COMPLETED:,} completed + {DEAD:,} dead",
            f"{full:,.0f}",
            f"{ratio:.2f}",
            f">= {GOAL_RATIO}",
            met(ratio >= GOAL_RATIO),
        ),
    ]


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
        connection.execute(text("VACUUM (ANALYZE) webhook_queue"))
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
