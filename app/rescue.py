"""Rescue: what a dead worker held is claimed again within seconds, with no beat to wait for.

A worker is dead when its row in `workers` was not renewed for WORKER_DEAD_AFTER_SECONDS
(app.liveness; every live worker looks, at each heartbeat), or when its node starts again (a
restarted worker knows its predecessor is gone), or when it exits. Its row is deleted, so its
claims stop holding: the next claim of each queue takes its rows over, one at a time,
counting a lost run on each (app.queue). The webhook events it was applying count a lost run
here, since their rolled-back transaction left no claim behind. Then the ticks that claim are
sent at once.

The same ticks are sent when the database comes back after an outage (the drains that failed
meanwhile gave up) and when Redis was restarted (its messages are gone): one worker sends
them, the first to notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from redis import Redis
from sqlalchemy import ColumnElement, delete, func, text
from sqlalchemy.orm import Session

from app import db, queue
from app.broker import get_redis
from app.config import Settings
from app.liveness import Beat
from app.models import WebhookEvent, WorkerProcess

log = logging.getLogger(__name__)

# The beat entries whose ticks claim what a dead worker held, with their arguments: the
# historical sync's jobs (those handed on too: their next page may have been in the dead
# worker's hands), the three queues. Campaign dials and Salesforce runs are taken over at
# their next run.
RESCUE_TICKS: dict[str, dict[str, object]] = {
    "process-historical-sync": {"unstarted_seconds": 0},
    "process-webhook-queue": {},
    "process-enrichment-queue": {},
    "bubble-sync-processor": {},
}

APPLYING = queue.QueueTable(WebhookEvent, order_by=[WebhookEvent.created_at], held=False)

SendTick = Callable[..., object]  # a beat entry's name, and keyword arguments for its task

RESUME_KEY = "callsync:rescue:resumed"
REDIS_MARK = "callsync:rescue:redis-mark"  # lives as long as Redis keeps its data
RESUME_EVERY_MS = 5_000  # however many workers notice an outage's end, one sends the ticks


class Watch:
    """What a worker child does after each heartbeat (liveness.start_heartbeat)."""

    def __init__(self, settings: Settings, send: SendTick) -> None:
        self._settings = settings
        self._send = send
        self._redis = get_redis()

    def __call__(self, beat: Beat) -> None:
        if beat.reconnected or redis_lost_its_data(self._redis):
            resume(self._redis, self._send)
        if beat.trusted:
            reap(self._settings, self._send)


def redis_lost_its_data(redis: Redis) -> bool:
    """The mark is gone: Redis restarted without its data (or was flushed), and the messages
    with it. The first worker to see it so puts it back."""
    return bool(redis.set(REDIS_MARK, 1, nx=True))


def resume(redis: Redis, send: SendTick) -> None:
    """After an outage: send the rescue ticks, unless another worker just did."""
    if redis.set(RESUME_KEY, 1, nx=True, px=RESUME_EVERY_MS):
        log.warning("the database or Redis came back: claiming what waits")
        _send_ticks(send)


def _send_ticks(send: SendTick) -> None:
    for entry, kwargs in RESCUE_TICKS.items():
        send(entry, **kwargs)


def mark_redis(send: SendTick) -> None:
    """At a worker's start: a Redis without the mark lost its data (the worker may be starting
    again after that), so what waits is claimed."""
    redis = get_redis()
    if redis_lost_its_data(redis):
        resume(redis, send)


def reap(settings: Settings, send: SendTick) -> list[str]:
    """Bury the workers whose rows were not renewed in time; returns their ids."""
    dead_after = timedelta(seconds=settings.worker_dead_after_seconds)
    return bury(WorkerProcess.heartbeat_at < func.now() - dead_after, send)


def bury_predecessors(node: str, boot: str, send: SendTick) -> list[str]:
    """At a worker's start: the rows of its node's earlier starts are of dead processes."""
    return bury((WorkerProcess.node == node) & (WorkerProcess.boot != boot), send)


def bury(dead: ColumnElement[bool], send: SendTick) -> list[str]:
    """Delete the `dead` workers' rows, count the lost run of the webhook events they were
    applying, and send the rescue ticks; returns their ids."""
    with db.session_scope() as session:
        buried = _delete(session, dead)
    if buried:
        log.warning("workers gone, their work is claimed again: %s", ", ".join(buried))
        _send_ticks(send)
    return buried


# A dead worker's database sessions can outlive it: a statement that hangs runs on after its
# client is gone, holding its locks. They are ended; application_name is the worker id
# (app.liveness), at most 63 characters.
END_SESSIONS = text("""
    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE application_name IN (SELECT left(dead, 63) FROM unnest(CAST(:ids AS text[])) AS dead)
      AND pid <> pg_backend_pid()
""")


def _delete(session: Session, dead: ColumnElement[bool]) -> list[str]:
    stmt = delete(WorkerProcess).where(dead).returning(WorkerProcess.id, WorkerProcess.applying)
    rows = session.execute(stmt).all()
    ids = [row.id for row in rows]
    if ids:
        session.execute(END_SESSIONS, {"ids": ids})
    applying = [event for row in rows for event in row.applying or []]
    if applying:  # waits for the ended sessions' locks to go
        queue.lose(session, APPLYING, applying)
    return ids
