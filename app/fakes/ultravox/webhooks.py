"""Ultravox's signed webhooks: the call as each event carries it, signing and sending."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import requests

WEBHOOK_EVENTS = ("call.started", "call.joined", "call.ended", "call.billed")


def sign(body: bytes, timestamp: str, secret: str) -> str:
    """Ultravox's webhook signature: hex HMAC-SHA256 of the body then the timestamp, no separator."""
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


# What each webhook's call object lacks, because it had not happened yet (api-facts §1.5).
_NOT_YET = {
    "call.started": ("joined", "ended", "endReason", "billedDuration", "shortSummary", "summary"),
    "call.joined": ("ended", "endReason", "billedDuration", "shortSummary", "summary"),
    "call.ended": ("billedDuration",),
    "call.billed": (),
}


def call_at(call: dict[str, Any], event: str) -> dict[str, Any]:
    """The call object as `event`'s webhook carries it: fields of later stages still empty."""
    earlier = dict(call) | dict.fromkeys(_NOT_YET[event])
    if event in ("call.started", "call.joined"):
        earlier["billingStatus"] = "BILLING_STATUS_PENDING"
    return earlier


def send_webhook(
    url: str,
    event: str,
    call: dict[str, Any],
    secret: str | Sequence[str],
    *,
    timestamp: datetime | None = None,
    timeout: float = 10.0,
) -> requests.Response:
    """POST `{"event", "call"}` signed as Ultravox does; several secrets mimic a rotation."""
    body = json.dumps({"event": event, "call": call}).encode()
    stamp = (timestamp or datetime.now(UTC)).isoformat(timespec="microseconds")
    secrets = [secret] if isinstance(secret, str) else list(secret)
    headers = {
        "Content-Type": "application/json",
        "X-Ultravox-Webhook-Timestamp": stamp,
        "X-Ultravox-Webhook-Signature": ",".join(sign(body, stamp, s) for s in secrets),
    }
    return requests.post(url, data=body, headers=headers, timeout=timeout)
