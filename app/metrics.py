"""Prometheus metrics, served by the API at `GET /metrics`.

What workers count (tasks by queue, name and outcome; how long each claim statement took) is
kept by prometheus_client's multiprocess mode: every process writes its own figures to files
in PROMETHEUS_MULTIPROC_DIR (var/prometheus by default), and a scrape adds up those of every
process of the machine. Queue depth is read from the database at scrape time, so it is never
stale; only the completed rows, which nobody waits on, are an estimate (app/queue_stats.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Task
from celery.signals import task_failure, task_retry, task_success

from app import db, pauses, queue_stats
from app.config import load_or_exit

# prometheus_client chooses its storage when first imported, from PROMETHEUS_MULTIPROC_DIR,
# which it reads itself: unless the environment names a directory, ours is set first.
_MULTIPROC_DIR = load_or_exit().prometheus_multiproc_dir
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_MULTIPROC_DIR))  # noqa: TID251
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)  # noqa: TID251

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest  # noqa: E402
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

CLAIM_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

TASKS = Counter(
    "callsync_tasks",
    "Celery tasks finished, by queue, task and outcome.",
    ["queue", "task", "outcome"],
)
CLAIMS = Histogram(
    "callsync_claim_seconds",
    "Time one claim statement took, by queue.",
    ["queue"],
    buckets=CLAIM_BUCKETS,
)


def count_task(queue: str, task: str, outcome: str) -> None:
    TASKS.labels(queue, task, outcome).inc()


@contextmanager
def timed_claim(queue: str) -> Iterator[None]:
    """Observe how long the claim inside the block takes, for `callsync_claim_seconds`."""
    started = time.perf_counter()
    yield
    CLAIMS.labels(queue).observe(time.perf_counter() - started)


def _queue_of(task: Task[Any, Any]) -> str:
    delivery = task.request.delivery_info or {}
    return str(delivery.get("routing_key") or "unknown")


def count_finished_tasks() -> None:
    """Count every task's outcome in this process; the Celery app calls this once."""
    for signal, outcome in (
        (task_success, "succeeded"),
        (task_failure, "failed"),
        (task_retry, "retried"),
    ):

        def count(sender: Task[Any, Any], outcome: str = outcome, **_: Any) -> None:
            count_task(_queue_of(sender), sender.name, outcome)

        signal.connect(count, weak=False, dispatch_uid=f"callsync.metrics.{outcome}")


class QueueCollector(Collector):
    """The queues' figures, read from the database at scrape time."""

    def collect(self) -> Iterator[Metric]:
        yield from _queue_families()


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
    lost = GaugeMetricFamily(
        "callsync_queue_worker_lost_rows",
        "Dead rows whose worker died with them MAX_LOST_RUNS times.",
        labels=["queue"],
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
        lost.add_metric([stat.name], stat.worker_lost)
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
    yield from (rows, estimated, oldest, dead, lost, jobs, waiting)


def exposition() -> bytes:
    """The text format Prometheus scrapes: the queues, and the workers of this machine."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(QueueCollector())
    return generate_latest(registry)
