"""Rescue: what a dead worker held is claimed again within seconds, with no beat to wait for.

A worker is dead when its row in `workers` was not renewed for WORKER_DEAD_AFTER_SECONDS
(app.liveness; every live worker looks, at each heartbeat), or when its node starts again (a
restarted worker knows its predecessor is gone), or when it exits. Its row is deleted, so its
claims stop holding: the next claim of each queue takes its rows over, one at a time,
counting a lost run on each (app.queue). The webhook events it was applying count a lost run
here, since their rolled-back transaction left no claim behind. Then the ticks that claim are
sent at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, func
from sqlalchemy.orm import Session

from app import db, queue
from app.config import Settings
from app.models import WebhookEvent, WorkerProcess

log = logging.getLogger(__name__)

# The beat entries whose ticks claim what a dead worker held: the historical sync's jobs,
# the three queues. Campaign dials and Salesforce runs are taken over at their next run.
RESCUE_TICKS = (
    "process-historical-sync",
    "process-webhook-queue",
    "process-enrichment-queue",
    "bubble-sync-processor",
)

APPLYING = queue.QueueTable(WebhookEvent, order_by=[WebhookEvent.created_at], held=False)

SendTick = Callable[[str], object]


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
        for entry in RESCUE_TICKS:
            send(entry)
    return buried


def _delete(session: Session, dead: ColumnElement[bool]) -> list[str]:
    stmt = delete(WorkerProcess).where(dead).returning(WorkerProcess.id, WorkerProcess.applying)
    rows = session.execute(stmt).all()
    applying = [event for row in rows for event in row.applying or []]
    if applying:
        queue.lose(session, APPLYING, applying)
    return [row.id for row in rows]
