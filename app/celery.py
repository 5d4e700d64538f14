"""The Celery application: at-least-once configuration, queues, periodic tasks, worker hooks."""

from __future__ import annotations

import enum
import functools
import gc
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec

from celery import Celery, Task
from celery.signals import (
    beat_init,
    celeryd_after_setup,
    setup_logging,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)
from kombu import Queue as KombuQueue

from app import cron_logs, db, liveness, logs, metrics, rescue, wake
from app.config import load_or_exit

SCHEDULE_FILE = Path(__file__).resolve().parent.parent / "celerybeat-schedule.py"
STATE_DIR = Path(__file__).resolve().parent.parent / "var"

# Every task finishes well inside the broker's visibility timeout, or Redis would hand the
# unacknowledged message to a second worker while the first still runs it.
TASK_TIME_LIMIT = 15 * 60
VISIBILITY_TIMEOUT = 2 * 60 * 60


class Queue(enum.StrEnum):
    DEFAULT = "default"  # periodic ticks: short claims that fan out
    SYNC = "sync"  # historical sync pages (Ultravox) and CRM syncs (Salesforce)
    WEBHOOKS = "webhooks"  # webhook queue drains (database only)
    ENRICHMENT = "enrichment"  # transcripts and analyses: network-bound, threads inside a task
    CAMPAIGNS = "campaigns"  # outbound calls and conversation syncs (ElevenLabs)


ALL_QUEUES = ",".join(Queue)  # for `celery worker -Q`: a worker on every queue


settings = load_or_exit()

app = Celery("callsync", broker=settings.redis_url)
app.conf.update(
    include=[
        "app.ultravox.tasks",
        "app.webhooks.tasks",
        "app.enrichment.tasks",
        "app.campaigns.tasks",
        "app.salesforce.tasks",
        "app.bubble.tasks",
        "app.maintenance.tasks",
    ],
    task_default_queue=Queue.DEFAULT.value,
    task_queues=[KombuQueue(queue.value) for queue in Queue],
    task_acks_late=True,
    # A task whose process died is not redelivered: what it held is rescued from the database
    # (app.rescue), where lost runs are counted, so that work which kills its worker is not
    # handed to worker after worker.
    task_reject_on_worker_lost=False,
    task_acks_on_failure_or_timeout=True,
    task_ignore_result=True,  # a task that reports progress opts in with ignore_result=False
    result_backend=settings.redis_url,
    result_expires=24 * 60 * 60,
    task_time_limit=TASK_TIME_LIMIT,
    task_soft_time_limit=TASK_TIME_LIMIT - 60,
    worker_prefetch_multiplier=1,
    worker_cancel_long_running_tasks_on_connection_loss=True,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT,
        **({"global_keyprefix": settings.redis_key_prefix} if settings.redis_key_prefix else {}),
    },
    result_backend_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
    timezone="UTC",
    enable_utc=True,
    beat_schedule_filename=str(STATE_DIR / "celerybeat-schedule"),
    worker_hijack_root_logger=False,
    # Task events stay off: they halve a worker's throughput, and Flower switches them on
    # (its enable_events option) for as long as it watches.
)
if SCHEDULE_FILE.exists():
    app.conf.beat_schedule = runpy.run_path(str(SCHEDULE_FILE))["BEAT_SCHEDULE"]


metrics.count_finished_tasks()

P = ParamSpec("P")


def periodic_task(
    job_name: str,
) -> Callable[[Callable[P, dict[str, Any]]], Task[P, dict[str, Any]]]:
    """Register a periodic task as `periodic.<seed name>`, logged in cron_job_logs per run."""

    def decorate(body: Callable[P, dict[str, Any]]) -> Task[P, dict[str, Any]]:
        @functools.wraps(body)
        def run(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
            return cron_logs.run_logged(job_name, lambda: body(*args, **kwargs))

        return app.task(name=f"periodic.{job_name}", queue=Queue.DEFAULT.value)(run)

    return decorate


@setup_logging.connect
def _configure_logging(**_: Any) -> None:
    """Our format for the worker and beat too (Celery leaves logging alone when this is
    connected)."""
    logs.configure(settings)


def send_tick(name: str, **kwargs: Any) -> None:
    """Send beat entry `name`'s task now, as beat would (with `kwargs`, if given)."""
    entry = app.conf.beat_schedule[name]
    app.send_task(entry["task"], kwargs=kwargs, **entry.get("options", {}))


@celeryd_after_setup.connect
def _name_this_start(sender: str, **_: Any) -> None:
    """The worker's main process, before its children fork: they inherit its node and start."""
    liveness.name_node(sender)


@worker_ready.connect
def _rescue_predecessors(**_: Any) -> None:
    """A worker started again: what its node's earlier processes held is claimed now."""
    rescue.mark_redis(send_tick)
    node = liveness.this_node()
    if node is not None:
        rescue.bury_predecessors(*node, send_tick)


@worker_process_init.connect
def _start_child(**_: Any) -> None:
    db.dispose_after_fork()
    liveness.start_heartbeat(settings, watch=rescue.Watch(settings, send_tick))
    # What the child inherits (the app, every module) lives as long as it does. Frozen, it is
    # left out of the cyclic GC's passes, which otherwise walked all of it again and again:
    # a third of a historical sync's CPU in the worker.
    gc.freeze()


@worker_process_shutdown.connect
def _stop_child(**_: Any) -> None:
    liveness.stop_heartbeat()


@beat_init.connect
def _publish_schedule(**_: Any) -> None:
    STATE_DIR.mkdir(exist_ok=True)
    with db.session_scope() as session:
        cron_logs.publish_schedule(session, app.conf.beat_schedule)


@beat_init.connect
def _listen_for_wakes(**_: Any) -> None:
    """The old pg_cron jobs' SQL functions wake their periodic task through beat."""

    wake.WakeListener(settings.database_url, app.conf.beat_schedule, send_tick).start()
