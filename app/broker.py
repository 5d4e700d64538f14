"""The broker's Redis, for the little shared state kept beside the messages: drain marks
(app.drains) and the providers' budgets (app.budgets)."""

from __future__ import annotations

from functools import lru_cache

from redis import Redis

from app.config import get_settings


@lru_cache
def get_redis() -> Redis:
    return Redis.from_url(get_settings().redis_url)
