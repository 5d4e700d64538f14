"""Queue figures on big tables: one `GET /metrics` scrape and one `callsync queue stats` read
with 2,000,000 completed rows in webhook_queue and in enrichment_queue (and a little of every
other status), beside the same on empty tables; and, for scale, the count by status over the
whole table that both ran before.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import requests
from sqlalchemy import text

from bench.environment import api_server, met

COMPLETED = 2_000_000
SCRAPES = 20
GOAL_RATIO = 2.0  # a full table's scrape at most twice an empty table's
TABLES = ("webhook_queue", "enrichment_queue", "sync_queue", "historical_sync_jobs")
# What queue stats counted before: every status, over the whole table.
WHOLE_TABLE_COUNT = """SELECT count(*) FILTER (WHERE status = 'pending'),
    count(*) FILTER (WHERE status = 'processing'), count(*) FILTER (WHERE status = 'completed'),
    count(*) FILTER (WHERE status = 'failed'), min(created_at) FILTER (WHERE status = 'pending'),
    count(*) FILTER (WHERE status = 'failed' AND {dead}) FROM {table}"""

READS = {
    "metrics": "GET /metrics",
    "stats": "queue stats (its statements)",
    "before": "before: count by status over the whole tables",
}

Row = tuple[str, ...]


def run() -> list[Row]:

    with api_server() as url:
        empty = _timings(url)
        fill(completed=COMPLETED)
        full = _timings(url)
    size = f"{COMPLETED:,} completed in each"
    rows: list[Row] = [
        ("read", "queue tables", f"ms (median of {SCRAPES})", "ratio to empty", "goal", "met")
    ]
    for key, read in READS.items():
        ratio = full[key] / empty[key]
        judged = key != "before"
        goal = f"<= {GOAL_RATIO:g}x" if judged else "for scale"
        rows.append((read, "empty", _ms(empty[key]), "", "", ""))
        rows.append(
            (
                read,
                size,
                _ms(full[key]),
                f"{ratio:.1f}x",
                goal,
                met(ratio <= GOAL_RATIO) if judged else "",
            )
        )
    return rows


def fill(*, completed: int, sync_completed: int = 1000) -> None:
    """`completed` finished rows in webhook_queue and enrichment_queue (and `sync_completed` in
    sync_queue), a few pending (the oldest 30 minutes old), processing, failed and dead ones in
    each queue, one sync job in flight among finished ones; then ANALYZE, as autovacuum would.
    """
    from app import db

    with db.session_scope() as session:
        agency = session.execute(
            text("INSERT INTO agencies (name) VALUES ('queue figures') RETURNING id")
        ).scalar_one()
        params = {"agency": agency, "completed": completed, "sync_completed": sync_completed}
        for statement in FILL:
            session.execute(text(statement), params)
    with db.session_scope() as session:
        session.execute(text(f"ANALYZE {', '.join(TABLES)}"))


FILL = [
    # Each queue: 30 pending, 5 processing, 10 failed with tries left, 3 dead; k numbers them.
    """CREATE TEMP TABLE small_rows ON COMMIT DROP AS
       SELECT s.status, s.attempts, (row_number() OVER ())::int AS k
       FROM (VALUES ('pending'::processing_status, 30, 0), ('processing', 5, 1),
                    ('failed', 10, 1), ('failed', 3, 99)) AS s(status, n, attempts),
            generate_series(1, s.n)""",
    """INSERT INTO webhook_queue (agency_id, event_type, payload, status, attempts, created_at,
                                  processed_at)
       SELECT :agency, 'call.ended', '{}', 'completed', 1, now() - interval '2 days', now()
       FROM generate_series(1, :completed)""",
    """INSERT INTO webhook_queue (agency_id, event_type, payload, status, attempts, created_at)
        SELECT :agency, 'call.ended', '{}', s.status, least(s.attempts, 5),
               now() - make_interval(mins => s.k)
        FROM small_rows AS s""",
    # Two enrichment rows (transcript, analysis) per call; the calls are not ended, so no
    # trigger queues more.
    """INSERT INTO calls (agency_id, ultravox_call_id, raw)
       SELECT :agency, uuid_generate_v4(), '{}' FROM generate_series(1, :completed / 2 + 48)""",
    """INSERT INTO enrichment_queue (call_id, agency_id, type, status, attempts, processed_at)
       SELECT c.id, :agency, t.type, 'completed', 1, now()
       FROM (SELECT id FROM calls WHERE agency_id = :agency LIMIT :completed / 2) AS c,
            (VALUES ('transcript'::enrichment_type), ('analysis')) AS t(type)""",
    """INSERT INTO enrichment_queue (call_id, agency_id, type, status, attempts, created_at)
        SELECT c.id, :agency, 'transcript', s.status, least(s.attempts, 3),
               now() - make_interval(mins => s.k)
        FROM small_rows AS s
        JOIN (SELECT id, (row_number() OVER ())::int AS k FROM calls
              WHERE agency_id = :agency LIMIT 48) AS c USING (k)""",
    """INSERT INTO sync_queue (table_name, record_id, operation, status, processed_at)
       SELECT 'users', n::text, 'INSERT', 'completed', now()
       FROM generate_series(1, :sync_completed) AS n""",
    """INSERT INTO sync_queue (table_name, record_id, operation, status, retry_count,
                                created_at)
        SELECT 'users', s.k::text, 'UPDATE', s.status, least(s.attempts, 3),
               now() - make_interval(mins => s.k)
        FROM small_rows AS s""",
    """INSERT INTO historical_sync_jobs (agency_id, date_to, status)
       SELECT :agency, now(),
              CAST(CASE WHEN n = 1 THEN 'in_progress' ELSE 'completed' END AS sync_job_status)
       FROM generate_series(1, 1000) AS n""",
]


def _timings(url: str) -> dict[str, float]:
    """The median seconds of a /metrics scrape, of queue stats' statements, and of the old
    whole-table count."""
    from app import db, queue_stats

    with db.session_scope() as session:

        def stats() -> None:
            queue_stats.queue_stats(session)
            queue_stats.jobs_in_flight(session)

        def before() -> None:
            for table, dead in queue_stats.QUEUES.items():
                session.execute(text(WHOLE_TABLE_COUNT.format(table=table, dead=dead)))

        return {
            "metrics": _median(
                lambda: requests.get(f"{url}/metrics", timeout=60).raise_for_status()
            ),
            "stats": _median(stats),
            "before": _median(before),
        }


def _median(read: Callable[[], object]) -> float:
    read()  # warm the caches
    seconds = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        read()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"
