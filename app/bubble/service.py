"""bubble_sync's work for one claimed item: push it to Bubble once, in effect.

Every record we create carries our own key (`callsync_key`: the item's id, and the step for a
signup). An item that was tried before looks its records up by that key before creating them,
so a retry after a lost run creates nothing twice. A signup is all or nothing: when a step
fails, the records this item created are deleted before the failure is recorded.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any

from app import db
from app.bubble import queries
from app.bubble.client import KEY_FIELD, BubbleClient, BubbleError
from app.bubble.ratelimit import RateLimiter
from app.config import get_settings
from app.models import SyncOperation, SyncQueueItem

log = logging.getLogger("bubble_sync")

_REFERENCE = re.compile(r"^\$(\w+)$")  # "$user": the id the signup's "user" step created


class ItemFailed(Exception):
    """The item could not be pushed; the message is the reason recorded on it."""


def process_item(item_id: uuid.UUID, leased_at: datetime) -> str:
    """Push the item if this claim still holds it; returns what happened."""
    settings = get_settings()
    with db.session_scope() as session:
        item = queries.get_leased(session, item_id, leased_at)
        if item is None:
            return "not ours"
        session.expunge(item)
    try:
        bubble_id, result = _push(client(), item)
    except (ItemFailed, BubbleError) as failure:
        with db.session_scope() as session:
            retry = queries.mark_failed(session, item, str(failure),
                                        base=settings.retry_base_seconds,
                                        cap=settings.retry_max_seconds)  # fmt: skip
        log.warning("[bubble_sync] item %s failed (%s): %s", item.id,
                    "retry later" if retry else "no retries left", failure)  # fmt: skip
        return "failed"
    with db.session_scope() as session:
        queries.mark_done(session, item, bubble_id=bubble_id, result=result)
    log.info("[bubble_sync] item %s %s done bubble_id=%s", item.id, item.operation, bubble_id)
    return "done"


@lru_cache
def client() -> BubbleClient:
    """The configured client, with its session and the shared budget, for the process's life."""
    settings = get_settings()
    base_url = settings.bubble_api_base_url or ""
    token = settings.bubble_api_token.get_secret_value() if settings.bubble_api_token else ""
    limiter = RateLimiter(f"callsync:bubble:rate:{base_url}", settings.bubble_rate_limit_per_minute)
    return BubbleClient(base_url, token, limiter)


def _push(bubble: BubbleClient, item: SyncQueueItem) -> tuple[str | None, dict[str, Any] | None]:
    retried = item.tries > 1  # every claim counts, a retry's included
    payload = dict(item.payload)
    type_name = str(payload.pop("_type", item.table_name))
    if item.operation == SyncOperation.INSERT:
        return _create(bubble, type_name, payload, key=str(item.id), look_first=retried), None
    if item.operation == SyncOperation.UPDATE:
        record_id = payload.pop("_id", None) or payload.pop("bubble_id", None)
        if not record_id:
            raise ItemFailed("an UPDATE needs the record's Bubble id in its payload (_id)")
        bubble.modify(type_name, str(record_id), payload)
        return str(record_id), None
    if item.operation == SyncOperation.SIGNUP_ATOMIC:
        created = _signup(bubble, item, payload, look_first=retried)
        return next(iter(created.values()), None), created
    raise ItemFailed(f"{item.operation} items are not pushed to Bubble")


def _create(
    bubble: BubbleClient, type_name: str, fields: dict[str, Any], *, key: str, look_first: bool
) -> str:
    """Create the record, unless an earlier try of this item already did."""
    if look_first and (found := bubble.find_by_key(type_name, key)):
        return found
    return bubble.create(type_name, {**fields, KEY_FIELD: key})


def _signup(
    bubble: BubbleClient, item: SyncQueueItem, payload: dict[str, Any], *, look_first: bool
) -> dict[str, str]:
    """Create the signup's records in order ({"steps": [{"key", "type", "fields"}...]});
    a field "$<key>" is the id of an earlier step's record. All or nothing."""
    steps = payload.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ItemFailed("a SIGNUP_ATOMIC payload needs a list of steps")
    created: dict[str, str] = {}
    types: dict[str, str] = {}
    for step in steps:
        key, type_name = str(step["key"]), str(step["type"])
        fields = {name: _resolve(value, created) for name, value in step.get("fields", {}).items()}
        try:
            created[key] = _create(bubble, type_name, fields, key=f"{item.id}:{key}",
                                   look_first=look_first)  # fmt: skip
        except BubbleError as error:
            undone = _compensate(bubble, created, types)
            raise ItemFailed(f"signup step {key!r} failed: {error}; {undone}") from error
        types[key] = type_name
    return created


def _resolve(value: Any, created: dict[str, str]) -> Any:
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if match is None:
        return value
    if match.group(1) not in created:
        raise ItemFailed(f"{value} names no earlier step")
    return created[match.group(1)]


def _compensate(bubble: BubbleClient, created: dict[str, str], types: dict[str, str]) -> str:
    """Delete what the signup created, newest first; says what it did."""
    for key in reversed(list(created)):
        try:
            bubble.delete(types[key], created[key])
        except BubbleError as error:
            # The retry finds the rest by key and finishes, or compensates, the signup.
            return f"rollback incomplete at {key!r}: {error}"
    return f"rolled back {len(created)} record(s)"
