"""Coalesced drain requests: at most one drain message waits per queue, however many ask.

A drain is a task that claims a batch of a queue's due rows. Whoever commits new rows asks
for a drain: the request sets the queue's key in Redis and sends a drain only when the key
was not already set. The drain deletes the key as it starts, before it claims, so rows
committed before a request found the key set are claimed by the drain the key stands for.
The key expires, so a drain lost with its message is replaced; beat's tick is the net under
both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Protocol

from redis.asyncio import Redis as AsyncRedis
from sqlalchemy.orm import Session

from app import db
from app.broker import get_redis
from app.config import get_settings

# A drain lost with its message is replaced after this long, or by beat's next tick.
REQUEST_TTL_MS = 10_000


class CountDue(Protocol):
    def __call__(self, session: Session, *, lease: timedelta) -> int: ...


def tick(count_due: CountDue, send: Callable[[], object]) -> dict[str, Any]:
    """Beat's tick for a drained queue: send a drain if rows are due (new ones, retries whose
    time came, runs whose lease expired); the result is the run's cron_job_logs entry."""
    lease = timedelta(seconds=get_settings().lease_seconds)
    with db.session_scope() as session:
        due = count_due(session, lease=lease)
    if due:
        send()
    return {"due": due, "drain_sent": bool(due)}


def request(key: str, send: Callable[[], object]) -> None:
    """Call `send` unless a drain requested under `key` is still waiting to start."""
    if get_redis().set(key, 1, nx=True, px=REQUEST_TTL_MS):
        send()


async def request_async(redis: AsyncRedis, key: str, send: Callable[[], Awaitable[object]]) -> None:
    """`request` for async code, on the caller's own connection."""
    if await redis.set(key, 1, nx=True, px=REQUEST_TTL_MS):
        await send()


def forget(key: str) -> None:
    """Drop the mark: the drain it stood for is starting (or the broker was purged)."""
    get_redis().delete(key)
