"""At Ultravox's real limits: enrichment and a historical sync at once, against a fake Ultravox
answering 429 above 200 requests/s per key (and 500/s per account), beside today's figures.

Two worker processes of two children each (queues enrichment, sync, default). Each case
stores calls for enrichment and starts a historical sync of twice as many, for each agency;
after a warm-up, the fake's own counts over a steady window give the requests served a second
and the share answered 429.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import text

from app import processes
from app.fakes import server
from app.fakes.ultravox import KEY_RATE_LIMIT, generate_calls
from bench.environment import LOG_DIR, ULTRAVOX_API_KEY, celery_worker, forget_enrichment, met

OTHER_KEY = "uv-bench-key-2"
GOAL_SHARE_OF_LIMIT = 0.9
GOAL_THROTTLED = 0.01
GOAL_TWO_KEYS = 1.8
WARM_UP_SECONDS = 3.0
CHUNK = 10  # calls stored per agency in turn
WINDOW_SECONDS = 10.0
UNBUDGETED = {"ULTRAVOX_RATE_LIMIT_PER_KEY": "1000000000"}  # today: no budget at all

Row = tuple[str, ...]


@dataclass(frozen=True)
class Measured:
    served_per_second: float
    throttled_share: float


def run(*, calls: int) -> list[Row]:
    limit = KEY_RATE_LIMIT
    one = _case([ULTRAVOX_API_KEY], calls, limited=True)
    two = _case([ULTRAVOX_API_KEY, OTHER_KEY], calls, limited=True)
    storm = _case([ULTRAVOX_API_KEY], calls, limited=True, env=UNBUDGETED)
    unlimited = _case([ULTRAVOX_API_KEY], calls, limited=False, env=UNBUDGETED)
    share = one.served_per_second / limit
    ratio = two.served_per_second / one.served_per_second
    return [
        ("case", "requests served/s", "429s", "goal", "met"),
        (
            "one agency, budgeted, fake limiting the key to 200/s",
            f"{one.served_per_second:,.0f} ({share:.0%} of the limit)",
            _share(one),
            f">= {GOAL_SHARE_OF_LIMIT:.0%} of the limit, <= {GOAL_THROTTLED:.0%} 429s",
            met(share >= GOAL_SHARE_OF_LIMIT and one.throttled_share <= GOAL_THROTTLED),
        ),
        (
            "two agencies with their own keys, budgeted",
            f"{two.served_per_second:,.0f}",
            _share(two),
            f">= {GOAL_TWO_KEYS}x one key",
            met(ratio >= GOAL_TWO_KEYS),
        ),
        ("  ratio to one key", f"{ratio:.2f}x", "", "", ""),
        (
            "today: no budget, against the limited fake",
            f"{storm.served_per_second:,.0f}",
            _share(storm),
            "before",
            "",
        ),
        (
            "today: no budget, against an unlimited fake",
            f"{unlimited.served_per_second:,.0f}",
            _share(unlimited),
            "before (above the real limit)",
            "",
        ),
    ]


def _share(measured: Measured) -> str:
    return f"{measured.throttled_share:.1%}"


def _case(
    keys: list[str], calls: int, *, limited: bool, env: dict[str, str] | None = None
) -> Measured:
    """Requests served a second (and the share refused) while every agency's work runs."""
    forget_enrichment()
    port = server.free_port()
    url = f"http://127.0.0.1:{port}"
    workers_env = {**os.environ, "ULTRAVOX_API_BASE_URL": url, **(env or {})}
    with ExitStack() as stack:
        stack.enter_context(_fake_ultravox(port, keys, 2 * calls, limited=limited))
        for n in range(2):
            stack.enter_context(
                processes.child(
                    f"limits-worker-{n}",
                    [
                        *celery_worker(concurrency=2, queues="enrichment,sync,default"),
                        "-n",
                        f"limits{n}@%h",
                    ],
                    log_dir=LOG_DIR,
                    ready=lambda log: " ready." in log,
                    env=workers_env,
                )
            )
        _start_work(keys, generate_calls(2 * calls, live_every=0), calls)
        time.sleep(WARM_UP_SECONDS)
        before, started = _stats(url), time.perf_counter()
        time.sleep(WINDOW_SECONDS)
        after, elapsed = _stats(url), time.perf_counter() - started
    _forget_work()
    made = after[0] - before[0]
    refused = after[1] - before[1]
    return Measured((made - refused) / elapsed, refused / made if made else 0.0)


@contextmanager
def _fake_ultravox(port: int, keys: list[str], calls: int, *, limited: bool) -> Iterator[None]:
    options = f"--port {port} --calls {calls} --live-every 0 --api-key {keys[0]}"
    command = [sys.executable, "-m", "app.cli", "fake", "ultravox", *options.split()]
    for key in keys[1:]:
        command += ["--other-key", key]
    if not limited:
        command.append("--no-limits")
    with processes.child(
        "fake-ultravox-limits", command, log_dir=LOG_DIR, ready=lambda log: "serving" in log
    ):
        yield


def _stats(url: str) -> tuple[int, int]:
    """(requests so far, of which refused by the rate limits) at the fake."""
    body = requests.get(f"{url}/_fake/stats", timeout=30).json()
    return int(body["requests"]), sum(body["throttled"].values())


def _start_work(keys: list[str], fake_calls: list[dict[str, object]], stored: int) -> None:
    """An agency per key, the first `stored` of the fake's calls waiting for enrichment (stored
    a few at a time per agency in turn, so that every batch a drain claims, and the threads
    working through it, hold every agency's items: claims are FIFO over agencies), and a historical
    sync of all the fake's calls for each (the calls it adds queue their transcripts too)."""
    from app import agencies, db, drains
    from app.ultravox import operations, queries
    from app.ultravox.schemas import StartSync

    with db.session_scope() as session:
        agency_ids = [
            agencies.add_agency(
                session, name=f"bench: limits {uuid.uuid4().hex[:8]}", ultravox_api_key=key
            )
            for key in keys
        ]
    for start in range(0, stored, CHUNK):
        for agency in agency_ids:
            with db.session_scope() as session:
                queries.upsert_calls(
                    session, agency, fake_calls[start : min(start + CHUNK, stored)]
                )
    drains.ENRICHMENT.request()
    request = StartSync(date_to=datetime.now(UTC) + timedelta(days=3650), max_calls=len(fake_calls))
    for agency in agency_ids:
        operations.start(agency, request)


def _forget_work() -> None:
    """Nothing of this case is left for the next case's workers."""
    from app import db

    forget_enrichment()
    with db.session_scope() as session:
        session.execute(
            text(
                "UPDATE historical_sync_jobs SET status = 'cancelled' "
                "WHERE status IN ('pending', 'in_progress')"
            )
        )
