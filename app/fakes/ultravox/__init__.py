"""A faithful fake of the Ultravox REST API (api-facts §1) with fault injection, its rate
limits and webhooks.

Served over loopback HTTP: `with FakeUltravox("key", generate_calls(237)).serve() as running`.
Faults apply to `GET /api/calls` or, with endpoint="messages", to `GET /api/calls/{id}/messages`,
in FIFO order; `latency` delays every `/api/` answer. Control endpoints live under `/_fake/`.
"""

from __future__ import annotations

from app.fakes.faults import Fault
from app.fakes.ultravox.data import START, generate_calls, generate_messages
from app.fakes.ultravox.fake import ACCOUNT_RATE_LIMIT, KEY_RATE_LIMIT, FakeUltravox, run
from app.fakes.ultravox.faults import BAD_RECORDS, FAULT_KINDS, MALFORMED_VARIANTS
from app.fakes.ultravox.pages import DEFAULT_PAGE_SIZE, DEFAULT_SORT, MAX_PAGE_SIZE, SORTS
from app.fakes.ultravox.webhooks import WEBHOOK_EVENTS, call_at, send_webhook, sign

__all__ = [
    "ACCOUNT_RATE_LIMIT",
    "BAD_RECORDS",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_SORT",
    "FAULT_KINDS",
    "KEY_RATE_LIMIT",
    "MALFORMED_VARIANTS",
    "MAX_PAGE_SIZE",
    "SORTS",
    "START",
    "WEBHOOK_EVENTS",
    "FakeUltravox",
    "Fault",
    "call_at",
    "generate_calls",
    "generate_messages",
    "run",
    "send_webhook",
    "sign",
]
