"""Every claim follows its queue's partial indexes on a table of mostly finished rows, as in
production: what it reads grows with the due rows, not with the table (EXPLAIN of each
statement a claim sends, planned as the claim plans it, on 100,000 finished rows and 5,000
pending per table, and a few pending of a second agency or table). The same holds when the
statistics were taken before the backlog came, as they are after a burst in a big table: the
seed's idx_*_status, which such statistics make look cheaper, is never read. With fair shares
each agency's rows come through the index on (agency, order...) WHERE pending, the rest through
the queue's own pending index; with FAIR_SHARES=false through that one alone."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import queue
from app.bubble import queries as bubble
from app.config import get_settings
from app.enrichment import queries as enrichment
from app.webhooks import queries as webhooks
from bench.queue_stats import fill

LEASE = timedelta(seconds=300)
CLAIMS: dict[str, tuple[Callable[[Session], object], tuple[str, ...]]] = {
    "webhook_queue": (
        lambda s: webhooks.take_due_events(s, limit=200, lease=LEASE),
        ("idx_webhook_queue_pending", "idx_webhook_queue_retry"),
    ),
    "enrichment_queue": (
        lambda s: enrichment.claim_enrichment_items(s, limit=200, lease=LEASE),
        ("idx_enrichment_queue_pending", "idx_enrichment_queue_retry"),
    ),
    "sync_queue": (
        lambda s: bubble.claim_pending(s, limit=10, lease=LEASE),
        ("idx_sync_queue_pending",),
    ),
}
# The index each fair claim finds its agencies (or tables) in and takes their shares from.
SHARES = {
    "webhook_queue": "idx_webhook_queue_agency_pending",
    "enrichment_queue": "idx_enrichment_queue_agency_pending",
    "sync_queue": "idx_sync_queue_table_pending",
}


BACKLOG = [  # 5,000 pending rows in each queue besides the finished ones of big_queues
    """INSERT INTO webhook_queue (agency_id, event_type, payload)
       SELECT (SELECT id FROM agencies LIMIT 1), 'call.started', jsonb_build_object('n', n)
       FROM generate_series(1, 5000) AS n""",
    """WITH backlog AS (
           INSERT INTO calls (agency_id, ultravox_call_id, raw)
           SELECT (SELECT id FROM agencies LIMIT 1), uuid_generate_v4(), '{}'
           FROM generate_series(1, 5000)
           RETURNING id)
       INSERT INTO enrichment_queue (call_id, type) SELECT id, 'transcript' FROM backlog""",
    """INSERT INTO sync_queue (table_name, record_id, operation)
       SELECT 'backlog', n::text, 'INSERT' FROM generate_series(1, 5000) AS n""",
    # A second agency (and table) with a few pending rows of its own.
    "INSERT INTO agencies (name) VALUES ('small')",
    """INSERT INTO webhook_queue (agency_id, event_type, payload)
       SELECT (SELECT id FROM agencies WHERE name = 'small'), 'call.started',
              jsonb_build_object('n', n)
       FROM generate_series(1, 5) AS n""",
    """WITH small AS (
           INSERT INTO calls (agency_id, ultravox_call_id, raw)
           SELECT (SELECT id FROM agencies WHERE name = 'small'), uuid_generate_v4(), '{}'
           FROM generate_series(1, 5)
           RETURNING id, agency_id)
       INSERT INTO enrichment_queue (call_id, agency_id, type)
       SELECT id, agency_id, 'transcript' FROM small""",
    """INSERT INTO sync_queue (table_name, record_id, operation)
       SELECT 'signup', n::text, 'INSERT' FROM generate_series(1, 5) AS n""",
    "ANALYZE webhook_queue, enrichment_queue, sync_queue",
]


FINISHED = 100_000  # enough rows that a plan reading the whole table costs more than an index


@pytest.fixture(params=["analysed", "stale"], ids=["statistics of the backlog", "stale statistics"])
def backlog(request: pytest.FixtureRequest, session: Session) -> None:
    fill(completed=FINISHED, sync_completed=FINISHED)  # analysed with a few rows pending
    analysed = request.param == "analysed"
    for statement in BACKLOG if analysed else BACKLOG[:-1]:
        session.execute(text(statement))
    session.commit()


def plans(session: Session, sent: list[tuple[str, Any]]) -> str:
    connection = session.connection()
    with queue.in_queue_order(session):
        return "\n".join(
            row[0]
            for statement, parameters in sent
            if statement.lstrip().upper().startswith(("UPDATE", "WITH", "SELECT"))
            for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        )


@contextmanager
def fair_shares_set(monkeypatch: pytest.MonkeyPatch, fair: bool) -> Iterator[None]:
    with monkeypatch.context() as patch:
        patch.setenv("FAIR_SHARES", str(fair).lower())
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()


def test_each_claim_reads_its_partial_indexes_not_the_table(
    backlog: None,
    session: Session,
    statements: list[tuple[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both modes on one backlog: filling it is most of the test's time.
    for fair_shares, table in itertools.product((True, False), CLAIMS):
        claim, indexes = CLAIMS[table]
        with fair_shares_set(monkeypatch, fair_shares):
            statements.clear()
            claim(session)
            plan = plans(session, statements)
            session.rollback()
        for index in indexes:
            assert index in plan, plan
        # Fair: the first agency, each next one, and each one's share, all from that index;
        # never an agency's share by filtering the queue's own index on it.
        assert plan.count(f"using {SHARES[table]} on") == (3 if fair_shares else 0), plan
        assert not re.search(rf"Seq Scan on {table}\b", plan), plan
        # idx_*_status only for the rows in flight (the lost runs' probe), never for the
        # pending or failed rows, which are many.
        assert plan.count(f"idx_{table}_status") == len(status_reads(plan, table)), plan
        assert set(status_reads(plan, table)) <= {"processing"}, plan


def status_reads(plan: str, table: str) -> list[str]:
    """The status that each read of idx_<table>_status looks for."""
    return re.findall(rf"idx_{table}_status\b[^\n]*\n\s*Index Cond: \(status = '(\w+)'", plan)


def test_the_sync_job_claim_function_reads_the_active_jobs_index(
    backlog: None, session: Session
) -> None:
    """claim_sync_jobs_batch is a SQL function: auto_explain shows the plan of its statement
    (as a notice, on a cursor of the session's own connection)."""
    connection = session.connection().connection.dbapi_connection
    assert connection is not None
    cursor = connection.cursor()
    cursor.execute("LOAD 'auto_explain'")
    for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_level = notice"):
        cursor.execute(f"SET LOCAL auto_explain.{setting}")
    cursor.execute("SELECT * FROM claim_sync_jobs_batch(3, 300)")
    cursor.close()
    plan = "".join(connection.notices)
    session.rollback()
    assert "Update on historical_sync_jobs" in plan, plan
    assert not re.search(r"Seq Scan on historical_sync_jobs\b", plan), plan
