"""A requests-per-minute budget shared by every worker, kept in Redis.

A sliding window: each request is a member of a sorted set scored by its time; a request may
go when fewer than `limit` members are younger than a minute. The check and the add are one
Lua script, so two workers can never both take the last place.
"""

from __future__ import annotations

import time
import uuid

from app.broker import get_redis

WINDOW_SECONDS = 60.0

# KEYS[1]: the window; ARGV: now, window, limit, member. Returns 0 when taken, else the
# seconds to wait until the oldest request leaves the window.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
    redis.call('EXPIRE', KEYS[1], math.ceil(ARGV[2]))
    return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(oldest[2] + ARGV[2] - ARGV[1])
"""


class RateLimiter:
    """At most `limit` requests per `window` seconds under `key`, across processes and machines."""

    def __init__(self, key: str, limit: int, *, window: float = WINDOW_SECONDS) -> None:
        self.key = key
        self.limit = limit
        self.window = window
        self._script = get_redis().register_script(_TAKE)

    def take(self) -> None:
        """Wait, if need be, for a place in the window; then take it."""
        while True:
            now = time.time()
            args: list[float | str] = [now, self.window, self.limit, uuid.uuid4().hex]
            wait = float(self._script(keys=[self.key], args=args))
            if wait <= 0:
                return
            time.sleep(min(wait, self.window))
