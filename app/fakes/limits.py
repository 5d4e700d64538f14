"""The providers' documented limits, enforced by the fakes (api-facts): request rates over a
sliding window, concurrent requests, and a daily allocation.

A rate is counted the way Django REST framework's throttles count (Ultravox is a DRF API): a
log of the accepted requests' times per key; a request finding `limit` of them younger than the
window is refused, and not logged, with the seconds until the oldest leaves.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

_LOCK = threading.Lock()  # one for every window: a request checks several at once


class SlidingWindow:
    """At most `limit` requests per `seconds` under each key; `limit` None means no limit."""

    def __init__(self, limit: int | None, seconds: float = 1.0) -> None:
        if limit is not None and limit < 1:
            raise ValueError("a rate limit must be at least 1 request")
        self.limit = limit
        self.seconds = seconds
        self._logs: dict[str, deque[float]] = {}

    def _wait(self, key: str, now: float) -> float:
        """Seconds until `key` has room (0: it has); call with _LOCK held."""
        if self.limit is None:
            return 0.0
        log = self._logs.setdefault(key, deque())
        while log and log[0] <= now - self.seconds:
            log.popleft()
        return log[0] + self.seconds - now if len(log) >= self.limit else 0.0

    def reset(self) -> None:
        with _LOCK:
            self._logs.clear()


def admit(checks: Sequence[tuple[SlidingWindow, str]]) -> int | None:
    """Log one request under every (window, key) if all have room; else the whole seconds to
    wait (a Retry-After), and nothing is logged."""
    now = time.monotonic()
    with _LOCK:
        wait = max((window._wait(key, now) for window, key in checks), default=0.0)
        if wait > 0:
            return max(1, math.ceil(wait))
        for window, key in checks:
            if window.limit is not None:
                window._logs[key].append(now)
    return None


class Concurrency:
    """At most `limit` requests in flight at once; `limit` None means no limit."""

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 1:
            raise ValueError("a concurrency limit must be at least 1 request")
        self.limit = limit
        self.in_flight = 0
        self.peak = 0  # the most seen at once, for tests
        self._lock = threading.Lock()

    def enter(self) -> bool:
        """Take a place; False (nothing taken) when all are in use."""
        with self._lock:
            if self.limit is not None and self.in_flight >= self.limit:
                return False
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


@dataclass
class DailyAllocation:
    """Requests an account may make in a day, every request counted, refused or not."""

    limit: int
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def use(self) -> bool:
        """Count one request; False when it is over the allocation."""
        with self._lock:
            self.used += 1
            return self.used <= self.limit
