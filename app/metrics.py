"""Prometheus metrics, served by the API at `GET /metrics`.

Workers run on many machines, so what they count (tasks by queue, name and outcome; how long
each claim statement took) is kept in one Redis hash that every worker adds to and the API
reads at scrape time. Queue depth is read from the database at scrape time, so it is never
stale; only the completed rows, which nobody waits on, are an estimate (app/queue_stats.py).
Recording a figure never fails the work it describes: a Redis error is logged and the figure
dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task
from celery.signals import task_failure, task_retry, task_success
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis import RedisError
from redis.client import Pipeline

from app import db, pauses, queue_stats
from app.broker import get_redis

logger = logging.getLogger(__name__)

KEY = "callsync:metrics"
CLAIM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SEP = "|"


def count_task(queue: str, task: str, outcome: str) -> None:
    _record(lambda pipe: pipe.hincrby(KEY, _SEP.join(("task", queue, task, outcome)), 1))


def observe_claim(queue: str, seconds: float) -> None:
    bucket = next((str(b) for b in CLAIM_BUCKETS if seconds <= b), "+Inf")

    def write(pipe: Pipeline) -> None:
        pipe.hincrby(KEY, _SEP.join(("claim", queue, bucket)), 1)
        pipe.hincrbyfloat(KEY, _SEP.join(("claim_sum", queue)), seconds)

    _record(write)


@contextmanager
def timed_claim(queue: str) -> Iterator[None]:
    """Observe how long the claim inside the block takes, for `callsync_claim_seconds`."""
    started = time.perf_counter()
    yield
    observe_claim(queue, time.perf_counter() - started)


def _record(write: Callable[[Pipeline], object]) -> None:
    try:
        with get_redis().pipeline(transaction=False) as pipe:
            write(pipe)
            pipe.execute()
    except RedisError as error:
        logger.warning("metrics: not recorded: %s", error)


def _queue_of(task: Task[Any, Any]) -> str:
    delivery = task.request.delivery_info or {}
    return str(delivery.get("routing_key") or "unknown")


def count_finished_tasks() -> None:
    """Count every task's outcome in this process; the Celery app calls this once."""
    for signal, outcome in ((task_success, "succeeded"), (task_failure, "failed"),
                            (task_retry, "retried")):  # fmt: skip

        def count(sender: Task[Any, Any], outcome: str = outcome, **_: Any) -> None:
            count_task(_queue_of(sender), sender.name, outcome)

        signal.connect(count, weak=False, dispatch_uid=f"callsync.metrics.{outcome}")


class CallsyncCollector(Collector):
    """Builds every metric family at scrape time from Redis and the database."""

    def collect(self) -> Iterator[Metric]:
        yield from _queue_families()
        recorded: dict[bytes, bytes] = get_redis().hgetall(KEY)  # type: ignore[assignment]
        yield from _worker_families(
            {key.decode(): value.decode() for key, value in recorded.items()}
        )


def _queue_families() -> Iterator[Metric]:
    rows = GaugeMetricFamily(
        "callsync_queue_rows",
        "Rows of each queue table by status: pending, processing, failed (exact).",
        labels=["queue", "status"],
    )
    estimated = GaugeMetricFamily(
        "callsync_queue_rows_estimate",
        "Completed rows of each queue table, estimated from the planner's statistics.",
        labels=["queue", "status"],
    )
    oldest = GaugeMetricFamily(
        "callsync_queue_oldest_pending_seconds",
        "Age of the oldest pending row.",
        labels=["queue"],
    )
    dead = GaugeMetricFamily(
        "callsync_queue_dead_rows", "Failed rows with no tries left.", labels=["queue"]
    )
    with db.session_scope() as session:
        stats = queue_stats.queue_stats(session)
        in_flight = queue_stats.jobs_in_flight(session)
        paused = pauses.all_pauses(session)
    for stat in stats:
        for status, count in stat.counts.items():
            rows.add_metric([stat.name, status], count)
        age = stat.oldest_pending.total_seconds() if stat.oldest_pending else 0.0
        oldest.add_metric([stat.name], age)
        dead.add_metric([stat.name], stat.dead)
        estimated.add_metric([stat.name, "completed"], stat.completed_estimate)
    jobs = GaugeMetricFamily(
        "callsync_sync_jobs_in_flight", "Historical sync jobs pending or in progress."
    )
    jobs.add_metric([], in_flight)
    waiting = GaugeMetricFamily(
        "callsync_needs_credentials",
        "1 for each provider's work waiting for credentials, by agency or business, with the "
        "provider's reason.",
        labels=["provider", "agency", "business", "reason"],
    )
    for pause in paused:
        scope = [str(pause.agency_id or ""), str(pause.business_id or "")]
        waiting.add_metric([pause.provider, *scope, pause.reason[:200]], 1)
    yield from (rows, estimated, oldest, dead, jobs, waiting)


def _worker_families(fields: dict[str, str]) -> Iterator[Metric]:
    tasks = CounterMetricFamily(
        "callsync_tasks",
        "Celery tasks finished, by queue, task and outcome.",
        labels=["queue", "task", "outcome"],
    )
    buckets: dict[str, dict[str, int]] = {}
    sums: dict[str, float] = {}
    for field, value in fields.items():
        kind, *labels = field.split(_SEP)
        if kind == "task":
            tasks.add_metric(labels, float(value))
        elif kind == "claim":
            buckets.setdefault(labels[0], {})[labels[1]] = int(value)
        elif kind == "claim_sum":
            sums[labels[0]] = float(value)
    claims = HistogramMetricFamily(
        "callsync_claim_seconds",
        "Time one claim statement took, by queue.",
        labels=["queue"],
    )
    for queue, counts in buckets.items():
        cumulative, running = [], 0
        for bound in (*(str(b) for b in CLAIM_BUCKETS), "+Inf"):
            running += counts.get(bound, 0)
            cumulative.append((bound, float(running)))
        claims.add_metric([queue], cumulative, sum_value=sums.get(queue, 0.0))
    yield from (tasks, claims)


REGISTRY = CollectorRegistry()
REGISTRY.register(CallsyncCollector())


def exposition() -> bytes:
    """The text format Prometheus scrapes."""
    return generate_latest(REGISTRY)
