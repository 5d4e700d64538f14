"""Coalesced drain requests: at most one drain message waits per queue, however many ask.

A drain is a task that claims a batch of a queue's due rows. Whoever commits new rows asks
for a drain: the request sets the queue's key in Redis and sends a drain only when the key
was not already set. The drain deletes the key as it starts, before it claims, so rows
committed before a request found the key set are claimed by the drain the key stands for.
The key expires, so a drain lost with its message is replaced; beat's tick is the net under
both.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from redis.asyncio import Redis as AsyncRedis
from sqlalchemy.orm import Session

from app import db
from app.broker import get_redis
from app.celery import Queue, app
from app.config import get_settings

# A drain lost with its message is replaced after this long, or by beat's next tick.
REQUEST_TTL_MS = 10_000


class CountDue(Protocol):
    def __call__(self, session: Session, *, lease: timedelta) -> int: ...


@dataclass(frozen=True)
class Drain:
    """A queue whose rows are drained in batches by the task named `task_name`. Anyone may
    wake it by name, so an area that commits another area's work needs no import of it."""

    task_name: str
    queue: Queue

    @property
    def key(self) -> str:
        return f"callsync:{self.queue}:drain-requested"

    def send(self) -> None:
        app.send_task(self.task_name, queue=self.queue.value)

    def request(self) -> None:
        """Send a drain unless one requested before is still waiting to start."""
        if get_redis().set(self.key, 1, nx=True, px=REQUEST_TTL_MS):
            self.send()

    async def request_async(self, redis: AsyncRedis) -> None:
        """`request` for async code, on the caller's own connection; kombu's publish
        blocks, so it runs in a thread."""
        if await redis.set(self.key, 1, nx=True, px=REQUEST_TTL_MS):
            await asyncio.to_thread(self.send)

    def forget(self) -> None:
        """Drop the mark: the drain it stood for is starting (or the broker was purged)."""
        get_redis().delete(self.key)

    def tick(self, count_due: CountDue) -> dict[str, Any]:
        """Beat's tick: send a drain if rows are due (new ones, retries whose time came, runs
        whose lease expired); the result is the run's cron_job_logs entry."""
        lease = timedelta(seconds=get_settings().lease_seconds)
        with db.session_scope() as session:
            due = count_due(session, lease=lease)
        if due:
            self.send()
        return {"due": due, "drain_sent": bool(due)}


WEBHOOKS = Drain("webhooks.drain_webhook_queue", Queue.WEBHOOKS)
ENRICHMENT = Drain("enrichment.drain_enrichment_queue", Queue.ENRICHMENT)
