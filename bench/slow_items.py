"""Enrichment when about one answer in a batch is slow, never comes or is throttled, beside the
same drain with no faults, in the same run.

A fake Ultravox answers each messages request after 100 ms, at most 200 requests a second per
key; from a case's start it answers a share 1/ENRICHMENT_BATCH_SIZE of them (one per batch on
average, at random) with the case's fault. One worker of 2 processes drains each case's
transcripts, with ULTRAVOX_TIMEOUT_SECONDS at 5 s so that an answer that never comes is cut
within the run (30 s by default). Each case reports the seconds until the first transcript is
stored and until the first analysis is, and the transcripts settled a second: stored, or
failed with an attempt counted (retried later by the queue's backoff).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from sqlalchemy import func, select

from app import processes
from app.fakes.ultravox import generate_calls
from bench.environment import (
    LOG_DIR,
    ULTRAVOX_API_KEY,
    Environment,
    celery_worker,
    fake_ultravox,
    forget_enrichment,
)

LATENCY_SECONDS = 0.1
TIMEOUT_SECONDS = 5
BATCH_SIZE = 200
CASES: list[tuple[str, dict[str, Any] | None]] = [
    ("no faults", None),
    ("1 in 200 answers slow (2 s)", {"kind": "slow", "params": {"seconds": 2}}),
    (
        f"1 in 200 answers never come (cut at {TIMEOUT_SECONDS} s)",
        {"kind": "slow", "params": {"seconds": 3600}},
    ),
    (
        f"1 in 200 answers trickle in forever (cut at {TIMEOUT_SECONDS} s)",
        {"kind": "trickle", "params": {"seconds": 3600}},
    ),
    ("1 in 200 answers 429 with Retry-After 1 s", {"kind": "429", "params": {"retry_after": 1}}),
]

Row = tuple[str, ...]


@dataclass(frozen=True)
class Measured:
    first_stored: float
    first_analysis: float
    settled_per_second: float
    failed: int


def run(env: Environment, *, transcripts: int) -> list[Row]:
    calls = generate_calls(transcripts * len(CASES), live_every=0)
    forget_enrichment()
    worker_env = {
        **os.environ,
        "ULTRAVOX_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "ENRICHMENT_BATCH_SIZE": str(BATCH_SIZE),
    }
    measured = []
    with (
        _fake(env, len(calls)),
        processes.child(
            "slow-items-worker",
            celery_worker(concurrency=2, queues="enrichment"),
            log_dir=LOG_DIR,
            ready=lambda log: " ready." in log,
            env=worker_env,
        ),
    ):
        for n, (_, fault) in enumerate(CASES):
            _faults(env.ultravox_url, fault)
            measured.append(_case(calls[n * transcripts : (n + 1) * transcripts]))
    baseline = measured[0].settled_per_second
    rows: list[Row] = [
        (
            "case",
            "transcripts",
            "first stored (s)",
            "first analysis (s)",
            "settled/s",
            "ratio",
            "failed (retried later)",
        )
    ]
    for (name, _), case in zip(CASES, measured, strict=True):
        rows.append(
            (
                name,
                f"{transcripts:,}",
                f"{case.first_stored:.2f}",
                f"{case.first_analysis:.2f}",
                f"{case.settled_per_second:,.0f}",
                f"{case.settled_per_second / baseline:.2f}x" if case is not measured[0] else "1",
                f"{case.failed}",
            )
        )
    return rows


@contextmanager
def _fake(env: Environment, calls: int) -> Iterator[None]:
    command = fake_ultravox(env, calls, "--latency", str(LATENCY_SECONDS))
    with processes.child(
        "fake-ultravox-slow-items", command, log_dir=LOG_DIR, ready=lambda log: "serving" in log
    ):
        yield


def _faults(url: str, fault: dict[str, Any] | None) -> None:
    requests.delete(f"{url}/_fake/faults", timeout=10).raise_for_status()
    if fault is not None:
        spec = {"rate": 1 / BATCH_SIZE, "faults": [fault], "endpoint": "messages", "seed": 7}
        requests.post(f"{url}/_fake/faults/random", json=spec, timeout=10).raise_for_status()


def _case(calls: list[dict[str, object]]) -> Measured:
    """Store the case's calls ended (each queues its transcript), drain, and time it."""
    from app import agencies, db, drains
    from app.models import EnrichmentItem, EnrichmentType, ProcessingStatus
    from app.ultravox import queries

    with db.session_scope() as session:
        agency = agencies.add_agency(
            session,
            name=f"bench: slow items {uuid.uuid4().hex[:8]}",
            ultravox_api_key=ULTRAVOX_API_KEY,
        )
    for start in range(0, len(calls), 1000):
        with db.session_scope() as session:
            queries.upsert_calls(session, agency, calls[start : start + 1000])
    item = EnrichmentItem
    counted = (
        select(item.type, item.status, func.count())
        .where(item.call_id.in_(_call_ids(agency)))
        .group_by(item.type, item.status)
    )
    started = time.perf_counter()
    drains.ENRICHMENT.request()
    first_stored = first_analysis = 0.0
    while True:
        with db.session_scope() as session:
            counts = {(kind, status): n for kind, status, n in session.execute(counted)}
        elapsed = time.perf_counter() - started
        transcripts = {s: counts.get((EnrichmentType.transcript, s), 0) for s in ProcessingStatus}
        if not first_stored and transcripts[ProcessingStatus.completed]:
            first_stored = elapsed
        if not first_analysis and counts.get((EnrichmentType.analysis, ProcessingStatus.completed)):
            first_analysis = elapsed
        settled = transcripts[ProcessingStatus.completed] + transcripts[ProcessingStatus.failed]
        if settled >= len(calls) and first_analysis:
            break
        if elapsed > 600:
            raise SystemExit(f"slow-items: the drain did not settle: {counts}")
        time.sleep(0.05)
    forget_enrichment()
    return Measured(
        first_stored, first_analysis, len(calls) / elapsed, transcripts[ProcessingStatus.failed]
    )


def _call_ids(agency: uuid.UUID) -> Any:
    from app.models import Call

    return select(Call.id).where(Call.agency_id == agency).scalar_subquery()
