"""Waking the webhook drain from the API after each commit, without a round trip per request.

Each accepted event pokes the waker. At most one wake runs at a time in a process; pokes that
arrive meanwhile, and within `window` after it, are answered by one more wake. A wake always
starts after the commit that poked it, so its event is claimed by the drain it sends, or by
the drain still waiting to start that drains.WEBHOOKS's request key stands for.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from app import drains

log = logging.getLogger(__name__)


class DrainWaker:
    def __init__(self, redis: Redis, *, window: float = 0.002) -> None:
        self._redis = redis
        self._window = window
        self._poked = False
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Note that an event was committed; a wake follows unless one is under way."""
        self._poked = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._wake_while_poked())

    async def close(self) -> None:
        if self._task is not None:
            await self._task

    async def _wake_while_poked(self) -> None:
        while self._poked:
            self._poked = False
            try:
                await drains.WEBHOOKS.request_async(self._redis)
            except Exception:  # the events are committed: beat's next tick drains them
                log.warning("could not wake the webhook drain; beat will", exc_info=True)
            await asyncio.sleep(self._window)
