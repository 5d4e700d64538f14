"""bubble_sync's work for one claimed item: push it to Bubble once, in effect.

What a create answers is stored on the item at once (`bubble_id`, and a signup's ids by step in
`result`), so a later try of the item reuses it instead of creating the record again. Only a
worker lost between Bubble's answer and that write leaves a record the retry cannot see; the
retry then looks for it by BUBBLE_IDEMPOTENCY_FIELD (our item key, written on every create when
that field is configured) or by the type's natural key (BUBBLE_NATURAL_KEYS), else creates it.

A signup is all or nothing: when a step fails, the records this item created are deleted before
the failure is recorded. UPDATE and DELETE find the record's Bubble id in the row, or in the
INSERT of the same record, or by the natural key. A 400 (a field Bubble does not know, a bad
value) is dead at once: no retry can fix it.
"""

from __future__ import annotations

import logging
import re
import uuid
from datetime import datetime
from functools import lru_cache
from typing import Any

from app import budgets, db, pauses
from app.bubble import queries
from app.bubble.client import BubbleClient, BubbleError, is_gone
from app.config import get_settings
from app.models import SyncOperation, SyncQueueItem

log = logging.getLogger("bubble_sync")

_REFERENCE = re.compile(r"^\$(\w+)$")  # "$user": the id the signup's "user" step created
ID_FIELD = "_id"  # a column mapped to this field holds the record's Bubble id


class ItemFailed(Exception):
    """The item could not be pushed; the message is the reason recorded on it. A `dead` failure
    is one that trying again cannot fix."""

    def __init__(self, reason: str, *, dead: bool = False) -> None:
        super().__init__(reason)
        self.dead = dead


def process_item(item_id: uuid.UUID, leased_at: datetime) -> str:
    """Push the item if this claim still holds it; returns what happened. When it is done, the
    record's next pending change is claimed and pushed too, and so on, rather than a tick later."""
    outcome, follower = _process_one(item_id, leased_at)
    while follower is not None:
        _, follower = _process_one(*follower)
    return outcome


def _process_one(
    item_id: uuid.UUID, leased_at: datetime
) -> tuple[str, tuple[uuid.UUID, datetime] | None]:
    settings = get_settings()
    with db.session_scope() as session:
        item = queries.get_leased(session, item_id, leased_at)
        if item is None:
            return "not ours", None
        session.expunge(item)
    try:
        bubble_id, result = _push(client(), item)
    except NotConfigured as failure:
        return _hold(item, str(failure)), None
    except (ItemFailed, BubbleError) as failure:
        if isinstance(failure, BubbleError) and failure.status == 401:
            return _hold(item, str(failure)), None
        dead = failure.dead if isinstance(failure, ItemFailed) else failure.status == 400
        with db.session_scope() as session:
            retry = queries.mark_failed(
                session,
                item,
                str(failure),
                dead=dead,
                base=settings.retry_base_seconds,
                cap=settings.retry_max_seconds,
            )
        log.warning(
            "[bubble_sync] item %s failed (%s): %s",
            item.id,
            "retry later" if retry else "no retries left",
            failure,
        )
        return "failed", None
    with db.session_scope() as session:
        queries.mark_done(session, item, bubble_id=bubble_id, result=result)
        follower = queries.claim_next_of_record(session, item)
    log.info("[bubble_sync] item %s %s done bubble_id=%s", item.id, item.operation, bubble_id)
    if follower.leased_at is None:
        return "done", None
    return "done", (follower.ids[0], follower.leased_at)


def _hold(item: SyncQueueItem, reason: str) -> str:
    """The item waits, pending, and Bubble's work pauses until its credentials are set."""
    with db.session_scope() as session:
        queries.release(session, item, f"{pauses.NEEDS_CREDENTIALS}: {reason}")
        pauses.pause(session, pauses.BUBBLE, reason, credential=credential())
    return pauses.NEEDS_CREDENTIALS


class NotConfigured(Exception):
    """BUBBLE_API_BASE_URL or BUBBLE_API_TOKEN is not set."""


def credential() -> str:
    """Which Bubble app and token this process pushes with, as a pause names them."""
    settings = get_settings()
    token = settings.bubble_api_token.get_secret_value() if settings.bubble_api_token else ""
    configured = settings.bubble_api_base_url and token
    return pauses.credential_id(f"{settings.bubble_api_base_url} {token}" if configured else None)


@lru_cache
def client() -> BubbleClient:
    """The configured client, with its session and the shared budget, for the process's life."""
    settings = get_settings()
    if not (settings.bubble_api_base_url and settings.bubble_api_token):
        raise NotConfigured("BUBBLE_API_BASE_URL and BUBBLE_API_TOKEN are not configured")
    base_url = settings.bubble_api_base_url or ""
    token = settings.bubble_api_token.get_secret_value() if settings.bubble_api_token else ""
    per_second = settings.bubble_rate_limit_per_minute / 60
    rate = budgets.Rate(
        f"bubble:app:{base_url}", budgets.usable(per_second, settings.rate_headroom_percent)
    )
    return BubbleClient(base_url, token, budgets.Rates([rate]))


def _push(bubble: BubbleClient, item: SyncQueueItem) -> tuple[str | None, dict[str, Any] | None]:
    payload = dict(item.payload)
    type_name = str(payload.pop("_type", item.table_name))
    if item.operation == SyncOperation.SIGNUP_ATOMIC:
        created = _signup(bubble, item, payload)
        return next(iter(created.values()), None), created
    fields, record_id = _mapped(type_name, payload)
    if item.operation == SyncOperation.INSERT:
        return _insert(bubble, item, type_name, fields), None
    record_id = record_id or _find_record(bubble, item, type_name, fields)
    if item.operation == SyncOperation.UPDATE:
        return _update(bubble, item, type_name, fields, record_id), None
    if record_id is None or not bubble.delete(type_name, record_id):
        return record_id, {"deleted": False}  # gone already, or never created
    return record_id, None


def _mapped(type_name: str, row: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The row's fields under their Bubble keys (BUBBLE_FIELD_MAP), and its Bubble id if the row
    holds it. A type without a map sends its columns as they are, but for `id` and our own
    (`_type`, `_id`: the Bubble id)."""
    columns = get_settings().bubble_field_map.get(type_name)
    if columns is None:
        fields = {key: value for key, value in row.items() if key != "id" and key[:1] != "_"}
        return fields, _text(row.get(ID_FIELD))
    if missing := [column for column in columns if column not in row]:
        raise ItemFailed(
            f"BUBBLE_FIELD_MAP maps column {missing[0]!r} of {type_name!r}, which "
            "the queued row does not have",
            dead=True,
        )
    fields = {field: row[column] for column, field in columns.items() if field != ID_FIELD}
    held = [row[column] for column, field in columns.items() if field == ID_FIELD]
    return fields, _text(held[0] if held else row.get(ID_FIELD))


def _text(value: Any) -> str | None:
    return str(value) if value else None


def _insert(
    bubble: BubbleClient, item: SyncQueueItem, type_name: str, fields: dict[str, Any]
) -> str:
    if item.bubble_id:  # an earlier try created it, and said so
        return item.bubble_id
    record_id = _create(bubble, item, type_name, fields, key=str(item.id))
    _store(item, bubble_id=record_id, result=None)
    return record_id


def _create(
    bubble: BubbleClient, item: SyncQueueItem, type_name: str, fields: dict[str, Any], *, key: str
) -> str:
    """Create the record, unless a lost earlier try of this item did and it can be found."""
    if item.tries > 1 and (found := _find_created(bubble, type_name, fields, key)):
        return found
    field = get_settings().bubble_idempotency_field
    return bubble.create(type_name, {**fields, field: key} if field else fields)


def _find_created(
    bubble: BubbleClient, type_name: str, fields: dict[str, Any], key: str
) -> str | None:
    if field := get_settings().bubble_idempotency_field:
        return bubble.find(type_name, field, key)
    return _find_by_natural_key(bubble, type_name, fields)


def _find_by_natural_key(
    bubble: BubbleClient, type_name: str, fields: dict[str, Any]
) -> str | None:
    natural = get_settings().bubble_natural_keys.get(type_name)
    if natural is None or fields.get(natural) is None:
        return None
    return bubble.find(type_name, natural, fields[natural])


def _store(item: SyncQueueItem, *, bubble_id: str | None, result: dict[str, Any] | None) -> None:
    """Keep what Bubble created before anything else can fail."""
    item.bubble_id, item.result = bubble_id, result
    with db.session_scope() as session:
        queries.record_created(session, item, bubble_id=bubble_id, result=result)


def _find_record(
    bubble: BubbleClient, item: SyncQueueItem, type_name: str, fields: dict[str, Any]
) -> str | None:
    """The Bubble id of the item's record: its INSERT's, or the one its natural key finds.
    None when neither knows of one but the INSERT ran (it never created the record)."""
    with db.session_scope() as session:
        insert = queries.earlier_insert(session, item, type_name)
        created = None if insert is None else insert.bubble_id
    if created:
        return created
    if found := _find_by_natural_key(bubble, type_name, fields):
        return found
    if insert is None and type_name not in get_settings().bubble_natural_keys:
        raise ItemFailed(
            f"no Bubble id for {item.table_name} {item.record_id}: no INSERT of it was queued, "
            f"its row has no {ID_FIELD!r} column and {type_name!r} has no natural key",
            dead=True,
        )
    return None


def _update(
    bubble: BubbleClient,
    item: SyncQueueItem,
    type_name: str,
    fields: dict[str, Any],
    record_id: str | None,
) -> str:
    if record_id is None:
        raise ItemFailed(
            f"{type_name} {item.record_id} is not in Bubble: it was never created", dead=True
        )
    try:
        bubble.modify(type_name, record_id, fields)
    except BubbleError as error:
        if is_gone(error):
            raise ItemFailed(f"{error} (deleted in Bubble)", dead=True) from error
        raise
    return record_id


def _signup(bubble: BubbleClient, item: SyncQueueItem, payload: dict[str, Any]) -> dict[str, str]:
    """Create the signup's records in order ({"steps": [{"key", "type", "fields"}...]});
    a field "$<key>" is the id of an earlier step's record. All or nothing."""
    steps = payload.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ItemFailed("a SIGNUP_ATOMIC payload needs a list of steps", dead=True)
    created: dict[str, str] = dict(item.result or {})  # what an earlier try kept
    types: dict[str, str] = {}
    for step in steps:
        key, type_name = str(step["key"]), str(step["type"])
        types[key] = type_name
        if key in created:
            continue
        fields = {name: _resolve(value, created) for name, value in step.get("fields", {}).items()}
        try:
            created[key] = _create(bubble, item, type_name, fields, key=f"{item.id}:{key}")
        except BubbleError as error:
            undone = _compensate(bubble, item, created, types)
            # Bubble refused the step: dead, once nothing of the signup is left to undo.
            dead = error.status == 400 and not created
            raise ItemFailed(f"signup step {key!r} failed: {error}; {undone}", dead=dead) from error
        _store(item, bubble_id=None, result=created)
    return created


def _resolve(value: Any, created: dict[str, str]) -> Any:
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if match is None:
        return value
    if match.group(1) not in created:
        raise ItemFailed(f"{value} names no earlier step", dead=True)
    return created[match.group(1)]


def _compensate(
    bubble: BubbleClient, item: SyncQueueItem, created: dict[str, str], types: dict[str, str]
) -> str:
    """Delete what the signup created, newest first; says what it did. What could not be
    deleted stays in the item's result: the retry reuses it and finishes the signup."""
    count = len(created)
    try:
        for key in reversed(list(created)):
            bubble.delete(types[key], created[key])
            del created[key]
    except BubbleError as error:
        return f"rollback incomplete at {key!r}: {error}"
    finally:
        _store(item, bubble_id=None, result=created or None)
    return f"rolled back {count} record(s)"
