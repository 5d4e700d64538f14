"""Fair shares between agencies: agency B's new work while agency A has a backlog, with the
claims' fair shares beside FIFO over every agency (FAIR_SHARES=false), in the same run.

(a) Webhooks: A has 100,000 pending events (queued over the past 10 minutes); one worker
    (2 processes) drains them while B's webhooks come through `callsync api`, 20 a second for
    5 s. B's latency is the time from
    sending a POST until its call row is visible; the drain rate is every event (A's and B's)
    over the time until none is pending. Four runs of each, alternated (fair, FIFO, FIFO,
    fair, FIFO, fair, fair, FIFO), so that the machine's drift weighs on both alike.
(b) Enrichment: A has 20,000 pending transcripts, against the fake Ultravox at its limits
    (200 requests/s per key, A and B each with its own key; 100 ms an answer); one worker
    (2 processes). B's calls end one a second for 10 s; each one's transcript item is timed
    from queued until claimed (the transcript starts) and until stored. The drain rate is the
    transcripts stored a second, both agencies, over the 30 s after a 3 s warm-up.
(c) The cost of many agencies (bench/fairness_claims.py).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
from sqlalchemy import func, select, text

from app import processes
from app.fakes.ultravox import call_at, generate_calls, sign
from bench import webhooks
from bench.environment import (
    LOG_DIR,
    ULTRAVOX_API_KEY,
    Environment,
    api_server,
    celery_worker,
    fake_ultravox,
    forget_enrichment,
    met,
)

BACKLOG_EVENTS = 100_000
BACKLOG_TRANSCRIPTS = 20_000
B_RATE, B_SECONDS = 20, 5  # B's webhooks: 100 in all
B_CALLS = 10  # B's calls that end, one a second
B_KEY = "uv-bench-key-b"
WARM_UP, WINDOW = 3.0, 30.0
# Fair shares or not, alternated so that each mode runs as often first as second.
ROUNDS = (True, False, False, True, False, True, True, False)
GOAL_WEBHOOK_P99_S = 1.0
GOAL_TRANSCRIPT_START_S = 3.0
GOAL_RATE_RATIO = 0.9

Row = tuple[str, ...]


@dataclass
class Webhooks:
    latencies: list[float] = field(default_factory=list)  # seconds, B's events
    events: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@dataclass(frozen=True)
class Transcripts:
    started: list[float]  # seconds from queued until claimed, B's items
    stored: list[float]  # until stored on the call
    rate: float  # transcripts stored a second, both agencies


def run(env: Environment) -> list[Row]:
    agency_a, agency_b = agency("A: backlog"), agency("B: new work", key=B_KEY)
    fair, fifo = Webhooks(), Webhooks()
    with api_server() as url:
        for fair_shares in ROUNDS:
            _webhooks(url, agency_a, agency_b, fair if fair_shares else fifo, fair_shares)
    enrich = {fair_shares: _transcripts(env, fair_shares) for fair_shares in (True, False)}
    return _rows(fair, fifo, enrich[True], enrich[False])


def _rows(fair: Webhooks, fifo: Webhooks, t_fair: Transcripts, t_fifo: Transcripts) -> list[Row]:
    p99_fair = _quantile(fair.latencies, 0.99)
    webhook_ratio = fair.rate / fifo.rate
    start_fair = max(t_fair.started)
    transcript_ratio = t_fair.rate / t_fifo.rate
    return [
        ("measure", "fair shares", "FIFO (FAIR_SHARES=false)", "goal", "met"),
        (
            f"(a) B's webhook while A has {BACKLOG_EVENTS:,} pending: POST until applied, "
            "p50 / p99",
            _p50_p99(fair.latencies),
            _p50_p99(fifo.latencies),
            f"p99 <= {GOAL_WEBHOOK_P99_S:.0f} s",
            met(p99_fair <= GOAL_WEBHOOK_P99_S),
        ),
        (
            "(a) drain of every event, A's and B's: events/s",
            f"{fair.rate:,.0f}",
            f"{fifo.rate:,.0f}",
            f"fair >= {GOAL_RATE_RATIO:.0%} of FIFO",
            met(webhook_ratio >= GOAL_RATE_RATIO),
        ),
        ("(a) fair / FIFO drain rate", f"{webhook_ratio:.2f}", "", "", ""),
        (
            f"(b) B's transcript while A has {BACKLOG_TRANSCRIPTS:,} pending: queued until "
            "started (claimed), p50 / max",
            _p50_max(t_fair.started),
            _p50_max(t_fifo.started),
            f"max <= {GOAL_TRANSCRIPT_START_S:.0f} s",
            met(start_fair <= GOAL_TRANSCRIPT_START_S),
        ),
        (
            "(b) ... queued until stored, p50 / max",
            _p50_max(t_fair.stored),
            _p50_max(t_fifo.stored),
            "",
            "",
        ),
        (
            "(b) transcripts stored/s, both agencies (the key's budget is 190/s)",
            f"{t_fair.rate:,.0f}",
            f"{t_fifo.rate:,.0f}",
            f"fair >= {GOAL_RATE_RATIO:.0%} of FIFO",
            met(transcript_ratio >= GOAL_RATE_RATIO),
        ),
        ("(b) fair / FIFO drain rate", f"{transcript_ratio:.2f}", "", "", ""),
    ]


# (a) webhooks ----------------------------------------------------------------------------


def _webhooks(
    url: str, agency_a: uuid.UUID, agency_b: uuid.UUID, into: Webhooks, fair_shares: bool
) -> None:
    """One run: A's backlog drained while B's webhooks come; adds to `into`."""
    from app import drains

    webhooks._truncate()
    queue_backlog(agency_a, BACKLOG_EVENTS)
    vacuum("webhook_queue")
    with _worker("webhooks", fair_shares):
        seen, stop = _watch_calls(agency_b)
        started = time.perf_counter()
        drains.WEBHOOKS.request()
        sent = _send_webhooks(url, agency_b)
        processes.wait_until(lambda: webhooks.none_pending(), "the webhook drain", timeout=600)
        elapsed = time.perf_counter() - started
        processes.wait_until(lambda: len(seen) >= len(sent), "B's call rows", timeout=60)
        stop.set()
    into.latencies += [seen[call] - sent[call] for call in sent]
    into.events += BACKLOG_EVENTS + len(sent)
    into.seconds += elapsed
    webhooks._truncate()


def queue_backlog(agency: uuid.UUID, events: int) -> None:
    """`events` call.ended events for distinct calls, as deliveries over the past 10 minutes
    leave them: each with its own created_at."""
    from app import db

    call = call_at(generate_calls(1, live_every=0)[0], "call.ended")
    with db.session_scope() as session:
        session.execute(
            text(
                "INSERT INTO webhook_queue (agency_id, event_type, payload, created_at) "
                "SELECT :agency, 'call.ended', jsonb_build_object('event', 'call.ended', 'call', "
                "jsonb_set(CAST(:call AS jsonb), '{callId}', to_jsonb(gen_random_uuid()::text))), "
                "now() - interval '10 minutes' + n * (interval '10 minutes' / :events) "
                "FROM generate_series(1, :events) AS n"
            ),
            {"agency": agency, "call": json.dumps(call), "events": events},
        )


def _send_webhooks(url: str, agency: uuid.UUID) -> dict[uuid.UUID, float]:
    """B_RATE signed call.ended webhooks a second for B_SECONDS; when each was sent."""
    sent: dict[uuid.UUID, float] = {}
    http = requests.Session()
    calls = generate_calls(B_RATE * B_SECONDS, seed=int(time.time()), live_every=0)
    began = time.perf_counter()
    for n, call in enumerate(calls):
        time.sleep(max(0.0, began + n / B_RATE - time.perf_counter()))
        body = json.dumps({"event": "call.ended", "call": call_at(call, "call.ended")}).encode()
        stamp = datetime.now(UTC).isoformat()
        headers = {
            "Content-Type": "application/json",
            "X-Ultravox-Webhook-Timestamp": stamp,
            "X-Ultravox-Webhook-Signature": sign(body, stamp, webhooks.SECRET),
        }
        sent[uuid.UUID(call["callId"])] = time.perf_counter()
        answer = http.post(f"{url}/webhooks/ultravox/{agency}", data=body, headers=headers)
        if answer.status_code != 204:
            raise SystemExit(f"B's webhook answered {answer.status_code}: {answer.text}")
    return sent


def _watch_calls(agency: uuid.UUID) -> tuple[dict[uuid.UUID, float], threading.Event]:
    """A thread noting when each of the agency's call rows first appears (its own index). It
    counts them and reads their ids only when the count grows, so that it costs the machine
    as little once B's rows are there (fair shares) as before (FIFO)."""
    from app import db
    from app.models import Call

    seen: dict[uuid.UUID, float] = {}
    stop = threading.Event()
    mine = select(Call.ultravox_call_id).where(Call.agency_id == agency)
    count = select(func.count()).where(Call.agency_id == agency)

    def watch() -> None:
        with db.get_engine().connect() as connection:
            while not stop.is_set():
                now = time.perf_counter()
                if connection.scalar(count) != len(seen):
                    for call_id in connection.scalars(mine):
                        seen.setdefault(call_id, now)
                connection.rollback()
                time.sleep(0.005)

    threading.Thread(target=watch, daemon=True).start()
    return seen, stop


# (b) enrichment --------------------------------------------------------------------------


def _transcripts(env: Environment, fair_shares: bool) -> Transcripts:
    from app import drains

    forget_enrichment()
    webhooks._truncate()
    fake_calls = generate_calls(BACKLOG_TRANSCRIPTS + B_CALLS, live_every=0)
    command = fake_ultravox(env, len(fake_calls), "--latency", "0.1", "--other-key", B_KEY)
    agency_a, agency_b = agency("A: transcripts"), agency("B: transcripts", key=B_KEY)
    with processes.child(
        "fake-ultravox-fairness", command, log_dir=LOG_DIR, ready=lambda log: "serving" in log
    ):
        _store_calls(agency_a, fake_calls[:BACKLOG_TRANSCRIPTS])
        vacuum("enrichment_queue")
        with _worker("enrichment", fair_shares):
            drains.ENRICHMENT.request()
            time.sleep(WARM_UP)
            before, began = _stored_transcripts(), time.perf_counter()
            for n, call in enumerate(fake_calls[BACKLOG_TRANSCRIPTS:]):
                time.sleep(max(0.0, began + n - time.perf_counter()))
                _store_calls(agency_b, [call])
                drains.ENRICHMENT.request()
            time.sleep(max(0.0, began + WINDOW - time.perf_counter()))
            rate = (_stored_transcripts() - before) / (time.perf_counter() - began)
            processes.wait_until(
                lambda: len(_b_items(agency_b, stored=True)) == B_CALLS,
                "B's transcripts",
                timeout=600,
            )
    items = _b_items(agency_b, stored=True)
    forget_enrichment()
    webhooks._truncate()
    return Transcripts([i[0] for i in items], [i[1] for i in items], rate)


def _store_calls(agency: uuid.UUID, calls: list[dict[str, object]]) -> None:
    """The calls stored ended, as a historical sync stores them: each queues its transcript."""
    from app import db
    from app.ultravox import queries

    for start in range(0, len(calls), 1000):
        with db.session_scope() as session:
            queries.upsert_calls(session, agency, calls[start : start + 1000])


def _stored_transcripts() -> int:
    from app import db
    from app.models import Call

    with db.session_scope() as session:
        stored = select(func.count()).where(Call.transcript_fetched_at.is_not(None))
        return int(session.scalar(stored) or 0)


def _b_items(agency: uuid.UUID, *, stored: bool) -> list[tuple[float, float]]:
    """Each of B's transcripts: seconds from queued until claimed, and until stored."""
    from app import db

    with db.session_scope() as session:
        rows = session.execute(
            text(
                "SELECT extract(epoch FROM q.processing_started_at - q.created_at), "
                "       extract(epoch FROM c.transcript_fetched_at - q.created_at) "
                "FROM enrichment_queue AS q JOIN calls AS c ON c.id = q.call_id "
                "WHERE q.agency_id = :agency AND q.type = 'transcript' "
                "  AND (NOT :stored OR c.transcript_fetched_at IS NOT NULL)"
            ),
            {"agency": agency, "stored": stored},
        ).all()
    return [(float(started), float(done or 0)) for started, done in rows]


# shared ----------------------------------------------------------------------------------


def agency(name: str, *, key: str = ULTRAVOX_API_KEY) -> uuid.UUID:
    from app import agencies, db

    with db.session_scope() as session:
        return agencies.add_agency(
            session,
            name=f"bench: fairness, {name}",
            ultravox_api_key=key,
            webhook_secret=webhooks.SECRET,
        )


@contextmanager
def _worker(queue: str, fair_shares: bool) -> Iterator[None]:
    env = os.environ | {"FAIR_SHARES": str(fair_shares).lower(), "WEBHOOK_BATCH_SIZE": "200"}
    mode = "fair" if fair_shares else "fifo"
    with processes.child(
        f"fairness-{queue}-{mode}",
        celery_worker(concurrency=2, queues=queue),
        log_dir=LOG_DIR,
        ready=lambda log: " ready." in log,
        env=env,
    ):
        yield


def vacuum(table: str) -> None:
    """The queue settled, as autovacuum would leave it, before the drain is measured."""
    from app import db

    with db.get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM (ANALYZE) {table}"))


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * q) - 1)]


def _p50_p99(seconds: list[float]) -> str:
    return f"{_ms(statistics.median(seconds))} / {_ms(_quantile(seconds, 0.99))}"


def _p50_max(seconds: list[float]) -> str:
    return f"{_ms(statistics.median(seconds))} / {_ms(max(seconds))}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.1f} s"
