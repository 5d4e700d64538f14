"""Webhooks: (a) ingest under load, (b) draining the queue, (c) POST-to-call latency.

(a) wrk sends distinct, validly signed deliveries at 32 connections to `callsync api`;
    beside it, pgbench runs the same two inserts per transaction as the ceiling.
(b) 50,000 queued events drained by one worker (2 processes) in batches, beside a bare
    Celery no-op task drain and a drain of one event per message.
(c) At 50 requests/s, the time from sending a POST until its call row is visible.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import func, make_url, select, text

from app import processes
from app.fakes.ultravox import call_at, generate_calls, sign
from bench.environment import BENCH_DATABASE_URL, LOG_DIR, api_server, celery_worker, met

SECRET = "whsec_bench"  # noqa: S105 - the benchmark agency's own
INGEST_GOAL_RPS = 2000
INGEST_GOAL_P99_MS = 50.0
DRAIN_GOAL_EPS = 6000
DRAIN_GOAL_RATIO = 6
LATENCY_GOAL_P50_MS = 20.0
LATENCY_GOAL_P99_MS = 50.0
WRK_SCRIPT = Path(__file__).with_name("webhook_requests.lua")

Row = tuple[str, ...]


def run(*, ingest_seconds: int, drain_events: int) -> list[Row]:
    agency = _agency()
    rows: list[Row] = [("measure", "value", "goal", "met")]
    with api_server() as url:
        rows += _ingest(url, agency, seconds=ingest_seconds)
        _truncate()
        with _worker(batch_size=200):
            rows += _latency(url, agency)
    _truncate()
    rows += _drains(agency, drain_events)
    return rows


# (a) ingest ------------------------------------------------------------------------------


def _ingest(url: str, agency: uuid.UUID, *, seconds: int) -> list[Row]:
    count = INGEST_GOAL_RPS * 3 * seconds  # more distinct deliveries than the run can send
    with tempfile.TemporaryDirectory() as folder:
        deliveries = Path(folder) / "deliveries.txt"
        _write_deliveries(deliveries, agency, count)
        output = _run(
            shlex.split(
                f"wrk -t1 -c32 --latency -d{seconds}s -s {WRK_SCRIPT} {url} -- {deliveries}"
            )
        )
    rps = float(_find(r"Requests/sec:\s+([\d.]+)", output))
    p50 = _millis(_find(r"(?m)^\s+50%\s+(\S+)", output))  # the distribution lines only
    p99 = _millis(_find(r"(?m)^\s+99%\s+(\S+)", output))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise SystemExit(f"ingest answered {errors.group(1)} requests with an error:\n{output}")
    ceiling = _pgbench_ceiling(agency, seconds=seconds)
    return [
        (
            "(a) ingest, wrk 32 connections, 1 uvicorn worker: requests/s",
            f"{rps:,.0f}",
            f">= {INGEST_GOAL_RPS:,}",
            met(rps >= INGEST_GOAL_RPS),
        ),
        (
            "(a) ingest p50 / p99 latency",
            f"{p50:.1f} / {p99:.1f} ms",
            f"p99 <= {INGEST_GOAL_P99_MS:.0f} ms",
            met(p99 <= INGEST_GOAL_P99_MS),
        ),
        (
            "(a) pgbench, the same two inserts per transaction, 32 clients: tps",
            f"{ceiling:,.0f}",
            "ceiling",
            "",
        ),
        ("(a) ingest / pgbench ceiling", f"{rps / ceiling:.0%}", "", ""),
    ]


def _write_deliveries(path: Path, agency: uuid.UUID, count: int) -> None:
    """One delivery a line: path, timestamp, signature and body, tab-separated, for wrk."""
    stamp = datetime.now(UTC).isoformat()
    template = call_at(generate_calls(1, live_every=0)[0], "call.ended")
    with path.open("w") as out:
        for _ in range(count):
            body = json.dumps(
                {"event": "call.ended", "call": template | {"callId": str(uuid.uuid4())}}
            )
            signature = sign(body.encode(), stamp, SECRET)
            out.write(f"/webhooks/ultravox/{agency}\t{stamp}\t{signature}\t{body}\n")


def _pgbench_ceiling(agency: uuid.UUID, *, seconds: int) -> float:
    from app.webhooks.store import ACCEPT

    body = json.dumps({"event": "call.ended", "call": call_at(generate_calls(1)[0], "call.ended")})
    statement = (
        ACCEPT.replace("$1", f"'{agency}'::uuid")
        .replace("$2", "'call.ended'")
        .replace(
            "$3::text::jsonb",
            f"jsonb_set('{_quoted(body)}'::jsonb, '{{call,callId}}', "
            "to_jsonb(gen_random_uuid()::text))",
        )
        .replace("$4", "''")
        .replace("$5", "'POST'")
        .replace("$6", "'/webhooks/ultravox/bench'")
        .replace("$7::text::jsonb", "'{}'::jsonb")
        .replace("$8::text::inet", "'127.0.0.1'::inet")
    )
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(statement.strip() + ";\n")
        script.flush()
        output = _run(
            shlex.split(
                "pgbench -h 127.0.0.1 -U postgres -n -M prepared -c 32 -j 2 "
                f"-T {seconds} -f {script.name} {make_url(BENCH_DATABASE_URL).database}"
            )
        )
    return float(_find(r"tps = ([\d.]+)", output))


def _quoted(value: str) -> str:
    return value.replace("'", "''")


# (b) drain -------------------------------------------------------------------------------


def _drains(agency: uuid.UUID, events: int) -> list[Row]:
    noop = _noop_drain(5000)
    per_event = _drain(agency, events=max(events // 20, 1000), batch_size=1)
    batch_50 = _drain(agency, events=events, batch_size=50)
    batch_200 = _drain(agency, events=events, batch_size=200)
    ratio = batch_200 / noop
    return [
        ("(b) bare Celery no-op task drain (2 processes): tasks/s", f"{noop:,.0f}", "baseline", ""),
        ("(b) drain, one event per message: events/s", f"{per_event:,.0f}", "", ""),
        (f"(b) drain, batches of 50, {events:,} events: events/s", f"{batch_50:,.0f}", "", ""),
        (
            f"(b) drain, batches of 200, {events:,} events: events/s",
            f"{batch_200:,.0f}",
            f">= {DRAIN_GOAL_EPS:,}",
            met(batch_200 >= DRAIN_GOAL_EPS),
        ),
        (
            "(b) batches of 200 / no-op drain",
            f"{ratio:.1f}x",
            f">= {DRAIN_GOAL_RATIO}x",
            met(ratio >= DRAIN_GOAL_RATIO),
        ),
    ]


def _drain(agency: uuid.UUID, *, events: int, batch_size: int) -> float:
    from app import db, drains
    from app.models import ProcessingStatus, WebhookEvent

    _queue_events(agency, events)
    with _worker(batch_size=batch_size):
        started = time.perf_counter()
        drains.WEBHOOKS.request()
        while not none_pending():
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    with db.session_scope() as session:
        done = session.scalar(
            select(func.count()).where(WebhookEvent.status == ProcessingStatus.completed)
        )
    if done != events:
        raise SystemExit(f"drain completed {done} of {events} events")
    _truncate()
    return events / elapsed


def none_pending() -> bool:
    """No webhook event is pending, as the oldest one shows: along idx_webhook_queue_pending,
    planned as the claims are (queue.in_queue_order), since a count, or a sort of what
    idx_webhook_queue_status finds, would read every pending event at each poll and take the
    CPU the drain needs."""
    from app import db, queue
    from app.models import ProcessingStatus, WebhookEvent

    oldest = select(WebhookEvent.id).where(WebhookEvent.status == ProcessingStatus.pending)
    with db.session_scope() as session, queue.in_queue_order(session):
        return session.scalar(oldest.order_by(WebhookEvent.created_at).limit(1)) is None


def _queue_events(agency: uuid.UUID, events: int) -> None:
    """`events` call.ended events for distinct calls, queued at once in SQL, with ids made
    as webhook-ingest makes them."""
    from app import db

    call = call_at(generate_calls(1, live_every=0)[0], "call.ended")
    with db.session_scope() as session:
        session.execute(
            text(
                "INSERT INTO webhook_queue (id, agency_id, event_type, payload) "
                "SELECT time_ordered_uuid(), :agency, 'call.ended', "
                "jsonb_build_object('event', 'call.ended', 'call', "
                "jsonb_set(CAST(:call AS jsonb), '{callId}', to_jsonb(gen_random_uuid()::text))) "
                "FROM generate_series(1, :events)"
            ),
            {"agency": agency, "call": json.dumps(call), "events": events},
        )


def _noop_drain(count: int) -> float:
    """No-op tasks published while the worker is not consuming, then drained."""
    import redis

    from app.celery import Queue, app
    from bench import noop

    with _worker(batch_size=200):
        app.control.cancel_consumer(Queue.WEBHOOKS.value, reply=True)
        for _ in range(count):
            noop.noop.delay()
        broker = redis.Redis.from_url(os.environ["REDIS_URL"])
        started = time.perf_counter()
        app.control.add_consumer(Queue.WEBHOOKS.value, reply=True)
        while broker.llen(Queue.WEBHOOKS.value):
            time.sleep(0.005)
        return count / (time.perf_counter() - started)


# (c) latency -----------------------------------------------------------------------------


def _latency(url: str, agency: uuid.UUID, *, rate: int = 50, seconds: int = 10) -> list[Row]:
    """Send `rate` requests/s; a watcher polls calls and notes when each first appears."""
    from app import db
    from app.models import Call

    calls = generate_calls(rate * seconds, live_every=0)
    sent: dict[uuid.UUID, float] = {}
    seen: dict[uuid.UUID, float] = {}
    done = threading.Event()

    def watch() -> None:
        count = select(func.count()).select_from(Call)
        with db.get_engine().connect() as connection:
            while not done.is_set():
                if connection.scalar(count) != len(seen):  # cheap; read the ids only on news
                    now = time.perf_counter()
                    for call_id in connection.scalars(select(Call.ultravox_call_id)):
                        seen.setdefault(call_id, now)
                connection.rollback()
                time.sleep(0.0005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    http = requests.Session()
    began = time.perf_counter()
    for n, call in enumerate(calls):
        time.sleep(max(0.0, began + n / rate - time.perf_counter()))
        body = json.dumps({"event": "call.ended", "call": call_at(call, "call.ended")}).encode()
        stamp = datetime.now(UTC).isoformat()
        headers = {
            "Content-Type": "application/json",
            "X-Ultravox-Webhook-Timestamp": stamp,
            "X-Ultravox-Webhook-Signature": sign(body, stamp, SECRET),
        }
        sent[uuid.UUID(call["callId"])] = time.perf_counter()
        http.post(f"{url}/webhooks/ultravox/{agency}", data=body, headers=headers, timeout=10)
    processes.wait_until(lambda: len(seen) >= len(sent), "every call row", timeout=60)
    done.set()
    watcher.join()
    latencies = sorted((seen[call_id] - sent[call_id]) * 1000 for call_id in sent)
    p50 = statistics.median(latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return [
        (
            f"(c) POST until the call row is visible, {rate} requests/s: p50 / p99",
            f"{p50:.1f} / {p99:.1f} ms",
            f"<= {LATENCY_GOAL_P50_MS:.0f} / {LATENCY_GOAL_P99_MS:.0f} ms",
            met(p50 <= LATENCY_GOAL_P50_MS and p99 <= LATENCY_GOAL_P99_MS),
        ),
    ]


# shared ----------------------------------------------------------------------------------


def _agency() -> uuid.UUID:
    from app import agencies, db

    with db.session_scope() as session:
        return agencies.add_agency(session, name="bench: webhooks", webhook_secret=SECRET)


def _truncate() -> None:
    from app import db

    with db.session_scope() as session:
        session.execute(text("TRUNCATE webhook_queue, webhook_logs, calls CASCADE"))


@contextmanager
def _worker(*, batch_size: int) -> Iterator[None]:
    command = [*celery_worker(concurrency=2, queues="webhooks"), "--include", "bench.noop"]
    env = os.environ | {"WEBHOOK_BATCH_SIZE": str(batch_size)}
    with processes.child(
        "webhook-worker", command, log_dir=LOG_DIR, ready=lambda log: " ready." in log, env=env
    ):
        yield


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _find(pattern: str, output: str) -> str:
    match = re.search(pattern, output)
    if match is None:
        raise SystemExit(f"no {pattern!r} in:\n{output}")
    return match.group(1)


def _millis(value: str) -> float:
    """wrk's latency: `812.00us`, `1.23ms` or `1.02s`."""
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
