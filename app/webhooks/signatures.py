"""Ultravox webhook signatures (api-facts §1.5): HMAC-SHA256 over the body, then the timestamp."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import UTC, datetime

SIGNATURE_HEADER = "X-Ultravox-Webhook-Signature"
TIMESTAMP_HEADER = "X-Ultravox-Webhook-Timestamp"


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """Lowercase hex HMAC-SHA256 of the raw body followed directly by the timestamp string."""
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def signature_matches(
    secrets: Iterable[str], body: bytes, timestamp: str, signature_header: str
) -> bool:
    """True when any comma-separated signature is the body's signature under any secret."""
    offered = [part.strip().encode() for part in signature_header.split(",") if part.strip()]
    for secret in secrets:
        expected = sign(secret, body, timestamp).encode()
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return True
    return False


def parse_timestamp(value: str) -> datetime | None:
    """The header's ISO-8601 datetime, as aware UTC; its exact rendering is not documented,
    so `Z` and offsets are both taken and a timestamp without a zone is read as UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
