"""Fair shares with many agencies: one claim of 200 webhook events (the median of 20, each
rolled back) with agency A's 100,000 pending and 3 pending for each of 1, 100 and 1,000 other
agencies, fair shares beside FIFO. The fair claim probes the index once per agency with
pending work, so its cost grows with the agencies waiting, not with the backlog.
"""

from __future__ import annotations

import os
import statistics
import time

from sqlalchemy import text

from bench import fairness, webhooks

OTHER_AGENCIES = (1, 100, 1000)

Row = tuple[str, ...]


def run() -> list[Row]:
    from app import db

    agency_a = fairness.agency("A: backlog, many agencies")
    webhooks._truncate()
    fairness.queue_backlog(agency_a, fairness.BACKLOG_EVENTS)
    rows: list[Row] = []
    added = 0
    for others in OTHER_AGENCIES:
        with db.session_scope() as session:
            session.execute(
                text(
                    "WITH more AS (INSERT INTO agencies (name) "
                    "  SELECT 'bench: fairness, other' FROM generate_series(1, :n) RETURNING id) "
                    "INSERT INTO webhook_queue (agency_id, event_type, payload) "
                    "SELECT more.id, 'call.started', jsonb_build_object('n', n) "
                    "FROM more, generate_series(1, 3) AS n"
                ),
                {"n": others - added},
            )
        added = others
        fairness.vacuum("webhook_queue")
        fair, fifo = _claim_ms(fair_shares=True), _claim_ms(fair_shares=False)
        rows.append(
            (
                f"(c) a claim of 200 events, A's backlog and {others:,} other agencies "
                "with 3 each: ms",
                f"{fair:.1f}",
                f"{fifo:.1f}",
                "",
                "",
            )
        )
    webhooks._truncate()
    return rows


def _claim_ms(*, fair_shares: bool) -> float:
    from datetime import timedelta

    from app import db
    from app.config import get_settings
    from app.webhooks import queries

    before = os.environ.get("FAIR_SHARES")
    os.environ["FAIR_SHARES"] = str(fair_shares).lower()
    get_settings.cache_clear()
    seconds = []
    try:
        for _ in range(21):
            with db.session_scope() as session:
                began = time.perf_counter()
                queries.take_due_events(session, limit=200, lease=timedelta(minutes=5))
                seconds.append(time.perf_counter() - began)
                session.rollback()
    finally:
        if before is None:
            del os.environ["FAIR_SHARES"]
        else:
            os.environ["FAIR_SHARES"] = before
        get_settings.cache_clear()
    return statistics.median(seconds[1:]) * 1000  # the first warms the caches
