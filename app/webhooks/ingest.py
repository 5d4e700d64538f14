"""webhook-ingest's checks: what a delivery must be before its event is queued.

Each check answers with the status the sender gets and a reason precise enough to act on;
the reason is what webhook_logs.validation_error records.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.webhooks.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    parse_timestamp,
    signature_matches,
)

KNOWN_EVENTS = frozenset({"call.started", "call.joined", "call.ended", "call.billed"})
MAX_BODY_BYTES = 1024 * 1024

# Names of headers never written to webhook_logs, and fragments that mark a header as secret.
DROPPED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
SECRET_FRAGMENTS = ("secret", "token", "api-key", "apikey", "password")


class Rejected(Exception):
    """The delivery is refused with `status`; `reason` is logged and returned to the sender."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Event:
    """An accepted delivery: the event to queue for the call."""

    event: str
    call_id: str
    payload: dict[str, Any]


@dataclass
class Delivery:
    """One webhook request as it arrived, with case-insensitive `headers` (Starlette's).

    `text` is the body when it is UTF-8 JSON (PostgreSQL stores it as sent), else None.
    """

    body: bytes
    headers: Mapping[str, str]
    text: str | None = field(default=None, init=False)
    parsed: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        try:
            text = self.body.decode()
            self.parsed = json.loads(text, parse_constant=_no_constants)
        except ValueError:  # not UTF-8, not JSON, or NaN/Infinity, which jsonb refuses
            return
        self.text = text


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loggable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request's headers without credentials or anything that looks like a secret."""
    return {
        name: value
        for name, value in headers.items()
        if name.lower() not in DROPPED_HEADERS
        and not any(fragment in name.lower() for fragment in SECRET_FRAGMENTS)
    }


def check(
    delivery: Delivery, secrets: Sequence[str], *, now: datetime, tolerance: timedelta
) -> Event:
    """The delivery's event, or Rejected with the first reason it cannot be accepted."""
    _check_content_type(delivery.headers.get("content-type"))
    _check_signature(delivery, secrets)
    _check_timestamp(delivery.headers[TIMESTAMP_HEADER], now=now, tolerance=tolerance)
    return _event(delivery)


def _check_content_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Rejected(415, f"Content-Type must be application/json, not {media_type or 'none'}")


def _check_signature(delivery: Delivery, secrets: Sequence[str]) -> None:
    signature = delivery.headers.get(SIGNATURE_HEADER)
    timestamp = delivery.headers.get(TIMESTAMP_HEADER)
    if not signature:
        raise Rejected(401, f"missing {SIGNATURE_HEADER} header")
    if not timestamp:
        raise Rejected(401, f"missing {TIMESTAMP_HEADER} header")
    if not secrets:
        raise Rejected(401, "the agency has no webhook secret configured")
    if not signature_matches(secrets, delivery.body, timestamp, signature):
        raise Rejected(401, "signature does not match the agency's webhook secret")


def _check_timestamp(timestamp: str, *, now: datetime, tolerance: timedelta) -> None:
    sent = parse_timestamp(timestamp)
    if sent is None:
        raise Rejected(400, f"{TIMESTAMP_HEADER} is not an ISO-8601 datetime")
    skew = (now - sent).total_seconds()
    if abs(skew) > tolerance.total_seconds():
        direction = "old" if skew > 0 else "in the future"
        raise Rejected(
            400,
            f"timestamp is {abs(skew):.0f}s {direction}, outside the "
            f"{tolerance.total_seconds():.0f}s tolerance",
        )


def _event(delivery: Delivery) -> Event:
    body = delivery.parsed
    if delivery.text is None:
        raise Rejected(400, "body is not valid UTF-8 JSON")
    if not isinstance(body, dict):
        raise Rejected(400, "body is not a JSON object")
    event = body.get("event")
    if not isinstance(event, str) or event not in KNOWN_EVENTS:
        raise Rejected(400, f"unknown event {event!r}; expected one of {sorted(KNOWN_EVENTS)}")
    call = body.get("call")
    if not isinstance(call, dict):
        raise Rejected(400, "missing call object")
    call_id = call.get("callId")
    if not isinstance(call_id, str) or not call_id:
        raise Rejected(400, "missing call.callId")
    try:
        canonical = str(uuid.UUID(call_id))
    except ValueError:
        raise Rejected(400, "call.callId is not a UUID") from None
    if canonical != call_id:
        raise Rejected(400, "call.callId is not a lowercase hyphenated UUID")
    return Event(event=event, call_id=call_id, payload=body)
