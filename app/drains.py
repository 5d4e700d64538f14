"""Coalesced drain requests: at most one drain message waits per queue, however many ask.

A drain is a task that claims a batch of a queue's due rows. Whoever commits new rows asks
for a drain: the request sets the queue's key in Redis and sends a drain only when the key
was not already set. The drain deletes the key as it starts, before it claims, so rows
committed before a request found the key set are claimed by the drain the key stands for.
The key expires, so a drain lost with its message is replaced; beat's tick is the net under
both.

A queue's task pair comes from its Drain (`Drain.tasks`): beat's tick, which sends a drain
when rows are due, and the drain, which does one batch. A batch whose rows the database
refuses is done again one row at a time (`batch_or_each`, `one_by_one`), so that only the
bad rows fail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from celery import Task
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from app import db
from app.broker import get_redis
from app.celery import Queue, app, periodic_task
from app.config import Settings, get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

# A drain lost with its message is replaced after this long, or by beat's next tick.
REQUEST_TTL_MS = 10_000


class CountDue(Protocol):
    def __call__(self, session: Session, *, lease: timedelta) -> int: ...


@dataclass(frozen=True)
class Drained:
    """What one drain did with its batch: the rows it claimed, those it finished (counted by
    what they were), and those that failed (to be retried, or dead)."""

    claimed: int = 0
    done: Mapping[str, int] = field(default_factory=dict)
    failed: int = 0

    def result(self) -> dict[str, int]:
        """The drain task's result."""
        return {"claimed": self.claimed, **self.done, "failed": self.failed}


class DrainBatch(Protocol):
    def __call__(self, *, batch_size: int, on_full_batch: Callable[[], object]) -> Drained: ...


DrainTasks = tuple[Task[[], dict[str, Any]], Task[[], dict[str, int]]]


@dataclass(frozen=True)
class Drain:
    """A queue whose rows are drained in batches of `batch_size` (a setting) by the task named
    `task_name`. Anyone may wake it by name, so an area that commits another area's work needs
    no import of it."""

    task_name: str
    queue: Queue
    batch_size: Callable[[Settings], int]

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

    def tasks(
        self,
        beat_name: str,
        count_due: CountDue,
        drain_batch: DrainBatch,
        *,
        then: Callable[[Drained], object] | None = None,
    ) -> DrainTasks:
        """Register the queue's task pair: beat's tick (`periodic.<beat_name>`) and the drain.

        The drain takes one batch of up to `batch_size` rows; a full batch sends the next
        drain before its work, so every worker process helps while work remains. `then`, if
        given, gets what the batch did, for the follow-ups (another queue to wake).
        """

        @periodic_task(beat_name)
        def tick() -> dict[str, Any]:
            """Beat's tick: start a drain if rows are due (new ones, retries whose time came,
            runs whose lease expired)."""
            return self.tick(count_due)

        @app.task(
            name=self.task_name,
            queue=self.queue,
            autoretry_for=(OperationalError,),  # database blips only
            retry_backoff=True,
            max_retries=3,
        )
        def drain() -> dict[str, int]:
            """Drain one batch of due rows."""
            self.forget()
            size = self.batch_size(get_settings())
            drained = drain_batch(batch_size=size, on_full_batch=self.send)
            if then is not None:
                then(drained)
            return drained.result()

        return tick, drain


def batch_or_each(what: str, batch: Callable[[], R], each: Callable[[DBAPIError], R]) -> R:
    """Run `batch`, one transaction for a whole batch. When the database refuses it (bad data,
    not the database itself), log why and run `each` with the error: it does the batch's rows
    again one at a time (`one_by_one`), so that only the bad ones fail."""
    try:
        return batch()
    except OperationalError:
        raise  # the database itself: the task retries, and the batch's rows come back
    except DBAPIError as error:
        log.warning("%s batch failed (%s); one by one", what, db.error_reason(error))
        refused = error
    return each(refused)


def one_by_one(
    session: Session, items: Iterable[T], apply: Callable[[T], object]
) -> list[tuple[T, str]]:
    """Apply each item in a savepoint of its own; returns those the database refused, each
    with its reason. The database itself failing (OperationalError) stops it."""
    refused = []
    for item in items:
        try:
            with session.begin_nested():
                apply(item)
        except OperationalError:
            raise
        except DBAPIError as error:
            refused.append((item, db.error_reason(error)))
    return refused


WEBHOOKS = Drain(
    "webhooks.drain_webhook_queue", Queue.WEBHOOKS, lambda settings: settings.webhook_batch_size
)
ENRICHMENT = Drain(
    "enrichment.drain_enrichment_queue",
    Queue.ENRICHMENT,
    lambda settings: settings.enrichment_batch_size,
)
