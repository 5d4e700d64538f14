"""Provider budgets shared by every process on every machine through Redis.

A `Rate` spaces requests evenly (GCRA, the virtual-scheduling form): each request reserves the
next free slot, `1/rate` seconds after the one before, and waits for it. Evenly spaced requests
never burst at a window's edge, so they run close to a provider's limit without its 429s. A
`Rate` can chain several (an API key's, then its account's). A `Slots` holds a number of
requests in flight at once (a semaphore whose places expire, so a killed process gives its
back). Waiting for budget is not a failure. A 429 that still comes is honoured: `throttled`
holds every process using that budget back for the Retry-After.

The scripts are short and ours: throttled-py's GCRA makes a waiting request poll until it is
allowed (hundreds of waiters mean a herd of Redis calls per slot) and cannot be moved on by a
429; pyrate-limiter and limits count windows, which let bursts through at their edges.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from redis import Redis

from app.broker import get_redis

PREFIX = "callsync:budget:"
DEFAULT_RETRY_AFTER = 1.0  # a 429 without Retry-After holds a budget back this long
RETRY_AFTER_CAP = 60.0

# KEYS[1]: the slot schedule (the next free slot's time); ARGV[1]: seconds between requests.
# Returns the seconds to wait for the slot just reserved.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now)
local following = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], tostring(following), 'PX', math.ceil((following - now) * 1000) + 1000)
return tostring(slot - now)
"""

# KEYS[1]: the slot schedule, KEYS[2]: the hold; ARGV[1]: seconds to hold back. No slot before
# now + ARGV[1]; requests already waiting see the hold when they wake.
_HOLD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or 0) < until_ then
    redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(ARGV[1] * 1000) + 1000)
end
local ms = math.ceil(ARGV[1] * 1000)
if redis.call('PTTL', KEYS[2]) < ms then
    redis.call('SET', KEYS[2], '1', 'PX', ms)
end
return 1
"""

# KEYS[1]: the places (a sorted set of holders scored by expiry); ARGV: seconds a place lasts,
# the limit, the holder. Returns 1 when a place was taken. Redis's clock, not the machines'.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
    redis.call('PEXPIRE', KEYS[1], math.ceil(ARGV[1] * 1000))
    return 1
end
return 0
"""


class Budget(Protocol):
    """What a provider client asks before each request, and tells after a 429."""

    def hold(self) -> AbstractContextManager[None]:
        """Wait for budget; the request is made inside."""

    def throttled(self, seconds: float | None) -> None:
        """The provider answered 429 (with Retry-After `seconds`, if it said)."""


def key_id(secret: str) -> str:
    """A name for a budget of an API key that does not reveal the key."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def usable(limit: float, headroom_percent: float) -> float:
    """The rate to run at under a provider's `limit`: a little below it, so that the jitter of
    the network cannot push two evenly spaced requests into one of the provider's windows."""
    return limit * (1 - headroom_percent / 100)


@dataclass(frozen=True)
class Rate:
    """`per_second` requests a second under `name`, shared through Redis."""

    name: str
    per_second: float

    def wait(self, redis: Redis) -> float:
        """Reserve the next slot; the seconds until it comes."""
        return float(_run(redis, _RESERVE, [PREFIX + self.name], [1 / self.per_second]))


class Rates:
    """Requests spaced by every one of `rates` in turn (a key's rate, then its account's)."""

    def __init__(self, rates: Sequence[Rate], *, redis: Redis | None = None) -> None:
        self.rates = tuple(rates)
        self._redis = redis

    @property
    def redis(self) -> Redis:
        return self._redis or get_redis()

    def take(self) -> None:
        for rate in self.rates:
            while True:
                time.sleep(rate.wait(self.redis))
                held = self._held_for(rate)
                if held <= 0:
                    break
                time.sleep(held)  # a 429 came while we waited: a new slot after the hold

    def hold(self) -> AbstractContextManager[None]:
        self.take()
        return nullcontext()

    def throttled(self, seconds: float | None) -> None:
        seconds = min(RETRY_AFTER_CAP, DEFAULT_RETRY_AFTER if seconds is None else seconds)
        first = self.rates[0]  # the key's own: which limit the provider meant is not said
        keys = [PREFIX + first.name, PREFIX + first.name + ":hold"]
        _run(self.redis, _HOLD, keys, [max(seconds, 0.001)])

    def _held_for(self, rate: Rate) -> float:
        milliseconds: int = self.redis.pttl(PREFIX + rate.name + ":hold")  # type: ignore[assignment, unused-ignore]
        return max(0, milliseconds) / 1000


class Slots:
    """At most `limit` requests in flight under `name`; a place is given back when the request
    ends, or after `expiry` seconds if its process died holding it."""

    poll = 0.02  # seconds between tries when every place is taken

    def __init__(self, name: str, limit: int, *, expiry: float = 120.0) -> None:
        self.name = name
        self.limit = limit
        self.expiry = expiry

    @contextmanager
    def hold(self) -> Iterator[None]:
        redis, holder = get_redis(), uuid.uuid4().hex
        while not self._acquire(redis, holder):
            time.sleep(self.poll)
        try:
            yield
        finally:
            redis.zrem(PREFIX + self.name, holder)

    def throttled(self, seconds: float | None) -> None:
        """A 429 for concurrency: the request is retried once a place frees; nothing to slow."""

    def _acquire(self, redis: Redis, holder: str) -> bool:
        args: list[float | str] = [self.expiry, self.limit, holder]
        return bool(_run(redis, _ACQUIRE, [PREFIX + self.name], args))


def _run(redis: Redis, script: str, keys: list[str], args: list[float | str]) -> Any:
    """Run a Lua script by its digest (sent in full only the first time Redis sees it)."""
    return redis.register_script(script)(keys=keys, args=args)
