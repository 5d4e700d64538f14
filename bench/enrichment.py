"""Enrichment: 10,000 transcripts from a fake Ultravox that answers each request after 100 ms
and, as the real one, at most 200 requests a second per key (the unlimited figure is in
bench/limits.py).

The drains (one worker, 2 processes, batches of ENRICHMENT_BATCH_SIZE with up to
ENRICHMENT_CONCURRENCY fetches in flight each) beside the sequential way: one item at a time,
as the seed's edge function fetched them, measured in the same run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import func, select

from app import processes
from app.fakes.ultravox import KEY_RATE_LIMIT, generate_calls
from bench.environment import (
    LOG_DIR,
    ULTRAVOX_API_KEY,
    Environment,
    celery_worker,
    fake_ultravox,
    forget_enrichment,
    met,
)

# The key's budget is the ceiling: 190/s, 5 % below the limit (RATE_HEADROOM_PERCENT). Over
# the whole run, the start and the last batches included, 90 % of it.
GOAL_ITEMS_PER_SECOND = 0.9 * 0.95 * KEY_RATE_LIMIT
LATENCY_SECONDS = 0.1
SEQUENTIAL_ITEMS = 100

Row = tuple[str, ...]


def run(env: Environment, *, transcripts: int) -> list[Row]:
    calls = generate_calls(transcripts, live_every=0)
    forget_enrichment()
    with _fake_ultravox(env, transcripts):
        sequential = _sequential(calls[:SEQUENTIAL_ITEMS])
        with processes.child(
            "enrichment-worker",
            celery_worker(concurrency=2, queues="enrichment"),
            log_dir=LOG_DIR,
            ready=lambda log: " ready." in log,
        ):
            drained, analysed = _drains(calls)
    rate = transcripts / drained
    return [
        ("way", "transcripts", "items/s", "goal", "met"),
        (
            "drains: batches on threads, one worker (2 processes)",
            f"{transcripts:,}",
            f"{rate:,.0f}",
            f">= {GOAL_ITEMS_PER_SECOND:.0f} (90% of the key's budget)",
            met(rate >= GOAL_ITEMS_PER_SECOND),
        ),
        (
            "  ... and every analysis too (rules)",
            f"{transcripts:,}",
            f"{2 * transcripts / analysed:,.0f}",
            "",
            "",
        ),
        (
            "sequential: one item at a time",
            f"{SEQUENTIAL_ITEMS}",
            f"{sequential:,.1f}",
            "baseline",
            "",
        ),
        ("ratio", "", f"{rate / sequential:,.0f}x", "", ""),
    ]


@contextmanager
def _fake_ultravox(env: Environment, calls: int) -> Iterator[None]:
    command = fake_ultravox(env, calls, "--latency", str(LATENCY_SECONDS))
    with processes.child(
        "fake-ultravox-slow", command, log_dir=LOG_DIR, ready=lambda log: "serving" in log
    ):
        yield


def _sequential(calls: list[dict[str, object]]) -> float:
    """Transcripts per second when each item is claimed, fetched and stored on its own."""
    from app.enrichment import service

    _store_calls("bench: sequential enrichment", calls)
    done = 0
    started = time.perf_counter()
    while done < len(calls):
        drained = service.drain_batch(batch_size=1, on_full_batch=lambda: None)
        if not drained.claimed:
            raise SystemExit("sequential enrichment ran out of items")
        done += drained.done["transcripts"]
    return done / (time.perf_counter() - started)


def _drains(calls: list[dict[str, object]]) -> tuple[float, float]:
    """Seconds until every transcript is stored, and until every analysis is too."""
    from app import drains
    from app.models import EnrichmentItem, EnrichmentType, ProcessingStatus

    agency = _store_calls("bench: enrichment drains", calls)
    item = EnrichmentItem
    started = time.perf_counter()
    drains.ENRICHMENT.request()
    done = {EnrichmentType.transcript: 0.0, EnrichmentType.analysis: 0.0}
    while not all(done.values()):
        counts = dict(
            _query(
                select(item.type, func.count())
                .where(item.status == ProcessingStatus.completed)
                .group_by(item.type)
            )
        )
        for kind in done:
            if not done[kind] and counts.get(kind, 0) >= len(calls):
                done[kind] = time.perf_counter() - started
        if time.perf_counter() - started > 600:
            raise SystemExit(f"enrichment did not finish for {agency}: {counts}")
        time.sleep(0.05)
    return done[EnrichmentType.transcript], done[EnrichmentType.analysis]


def _store_calls(name: str, calls: list[dict[str, object]]) -> uuid.UUID:
    """A new agency with `calls` stored ended: each queues its transcript (the trigger)."""
    from app import agencies, db
    from app.ultravox import queries

    with db.session_scope() as session:
        agency = agencies.add_agency(session, name=name, ultravox_api_key=ULTRAVOX_API_KEY)
    for start in range(0, len(calls), 1000):
        with db.session_scope() as session:
            queries.upsert_calls(session, agency, calls[start : start + 1000])
    return agency


def _query(stmt: object) -> list[tuple[object, int]]:
    from app import db

    with db.session_scope() as session:
        return [tuple(row) for row in session.execute(stmt)]  # type: ignore[call-overload]
