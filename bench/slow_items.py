"""Enrichment when about one answer in a batch is slow, never comes or is throttled, beside the
same drain with no faults, and beside drains that do not top up, in the same run.

A fake Ultravox answers each messages request after 100 ms, at most 200 requests a second per
key; from a case's start it answers a share 1/ENRICHMENT_BATCH_SIZE of them (one per batch on
average, at random) with the case's fault. One worker of 2 processes drains each case's
transcripts, with ULTRAVOX_TIMEOUT_SECONDS at 5 s so that an answer that never comes is cut
within the run (30 s by default): first with ENRICHMENT_TOP_UP_SECONDS=0 (a drain ends with
its batch's slowest item), then at the default 30 (a drain claims more while only its
stragglers are left), each on calls of its own.

Each case reports the seconds until the first transcript is stored and until the first
analysis is, and the transcripts settled a second until 90 % of them were (settled: stored,
or failed with an attempt counted, retried later by the queue's backoff); the last 10 % are
left out because the case's last faulted item, which may start near its end, would add up to
a timeout to the whole.
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
SETTLED_SHARE = 0.9
TOP_UPS = ("0", "30")  # ENRICHMENT_TOP_UP_SECONDS: never, then the default
WARM_UP = 400  # transcripts drained first, unmeasured: the worker's connections and threads
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
    per_worker = WARM_UP + transcripts * len(CASES)
    calls = generate_calls(per_worker * len(TOP_UPS), live_every=0)
    forget_enrichment()
    measured: dict[str, list[Measured]] = {}
    with _fake(env, len(calls)):
        for n, top_up in enumerate(TOP_UPS):
            mine = calls[n * per_worker : (n + 1) * per_worker]
            measured[top_up] = _cases(env, mine, transcripts, top_up)
    without, with_top_up = (measured[top_up] for top_up in TOP_UPS)
    baseline = with_top_up[0].settled_per_second
    rows: list[Row] = [
        (
            "case",
            "transcripts",
            "first stored (s)",
            "first analysis (s)",
            "settled/s, no top-up",
            "settled/s",
            "vs no faults",
            "failed (retried later)",
        )
    ]
    for (name, _), before, case in zip(CASES, without, with_top_up, strict=True):
        rows.append(
            (
                name,
                f"{transcripts:,}",
                f"{case.first_stored:.2f}",
                f"{case.first_analysis:.2f}",
                f"{before.settled_per_second:,.0f}",
                f"{case.settled_per_second:,.0f}",
                f"{case.settled_per_second / baseline:.2f}x",
                f"{case.failed}",
            )
        )
    return rows


def _cases(
    env: Environment, calls: list[dict[str, object]], transcripts: int, top_up: str
) -> list[Measured]:
    """Every case, on a worker of its own whose drains top up for `top_up` seconds."""
    worker_env = {
        **os.environ,
        "ULTRAVOX_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "ENRICHMENT_BATCH_SIZE": str(BATCH_SIZE),
        "ENRICHMENT_TOP_UP_SECONDS": top_up,
    }
    with processes.child(
        f"slow-items-worker-top-up-{top_up}",
        celery_worker(concurrency=2, queues="enrichment"),
        log_dir=LOG_DIR,
        ready=lambda log: " ready." in log,
        env=worker_env,
    ):
        _faults(env.ultravox_url, None)
        _case(calls[:WARM_UP])
        measured = []
        for n, (_, fault) in enumerate(CASES):
            start = WARM_UP + n * transcripts
            _faults(env.ultravox_url, fault)
            measured.append(_case(calls[start : start + transcripts]))
    return measured


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
    item = EnrichmentItem
    counted = (
        select(item.type, item.status, func.count())
        .where(item.call_id.in_(_call_ids(agency)))
        .group_by(item.type, item.status)
    )
    # Timed from the first calls' upsert: a drain still running may take them as they commit.
    started = time.perf_counter()
    for start in range(0, len(calls), 1000):
        with db.session_scope() as session:
            queries.upsert_calls(session, agency, calls[start : start + 1000])
        drains.ENRICHMENT.request()
    first_stored = first_analysis = most_settled = 0.0
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
        if not most_settled and settled >= SETTLED_SHARE * len(calls):
            most_settled = elapsed
        if settled >= len(calls) and first_analysis:
            break
        if elapsed > 600:
            raise SystemExit(f"slow-items: the drain did not settle: {counts}")
        time.sleep(0.05)
    forget_enrichment()
    rate = SETTLED_SHARE * len(calls) / most_settled
    return Measured(first_stored, first_analysis, rate, transcripts[ProcessingStatus.failed])


def _call_ids(agency: uuid.UUID) -> Any:
    from app.models import Call

    return select(Call.id).where(Call.agency_id == agency).scalar_subquery()
