"""The ElevenLabs Conversational AI client (api-facts §2): xi-api-key auth, 30 s timeouts.

Placing a call is tried again only when ElevenLabs answered 429, which placed no call: a
timeout or a 5xx may still have dialled the person, and an attempt is dialled at most once.
Its two 429s differ (api-facts §2.1): `too_many_concurrent_requests` (the plan's concurrency
is in use) waits for a place and tries again, up to ELEVENLABS_SLOT_WAIT_SECONDS; `system_busy`
(the platform is overloaded) backs off as the transient retries do (HTTP_RETRY_*). Reading a
conversation is retried on transient errors.

Errors:

    ElevenLabsError                 refused, or an answer that is not what its schema says
    └── ElevenLabsRetryable         timeout, connection failure, 408/409/429 or 5xx
        ├── ElevenLabsConcurrency   429 too_many_concurrent_requests: no call placed
        └── ElevenLabsBusy          429 system_busy (or a 429 that does not say): no call placed
"""

from __future__ import annotations

import logging
import random
import time
from functools import lru_cache
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, ValidationError

from app import budgets, http
from app.campaigns.schemas import ConversationDetails, OutboundCall
from app.config import get_settings
from app.validation import first_error

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)

TOO_MANY_CONCURRENT_REQUESTS = "too_many_concurrent_requests"
SLOT_POLL_SECONDS = 0.5  # between tries for a place, when ElevenLabs gives no Retry-After


class ElevenLabsError(http.ProviderError):
    """ElevenLabs refused the request, or its answer was not what its schema says."""


class ElevenLabsRetryable(ElevenLabsError, http.RetryableError):
    """Timeout, connection failure, 408/409/429 or 5xx; `retry_after` set if the server said."""


class ElevenLabsConcurrency(ElevenLabsRetryable):
    """429 too_many_concurrent_requests: the plan's requests at once are in use. No call was
    placed; the work waits for a place."""


class ElevenLabsBusy(ElevenLabsRetryable):
    """429 system_busy, or a 429 that does not say why: the platform is overloaded. No call
    was placed; retried with backoff."""


class ElevenLabsClient:
    timeout = 30.0  # DESIGN.md: 30 s for ElevenLabs

    def __init__(
        self,
        base_url: str,
        api_key: str,
        session: requests.Session | None = None,
        *,
        budget: budgets.Budget | None = None,
        slot_wait: float = 120.0,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._budget = budget
        self.slot_wait = slot_wait
        self._session = session or http.build_session(self._base_url, {"xi-api-key": api_key})

    @http.retry_transient(ElevenLabsBusy)
    def outbound_call(
        self,
        *,
        agent_id: str,
        agent_phone_number_id: str,
        to_number: str,
        dynamic_variables: dict[str, str],
    ) -> OutboundCall:
        """`POST /v1/convai/twilio/outbound-call`, tried again only after a 429 (no call was
        placed): for a place, up to `slot_wait` seconds, or with backoff when the platform is
        busy. `success` may be false with a message."""
        body = {
            "agent_id": agent_id,
            "agent_phone_number_id": agent_phone_number_id,
            "to_number": to_number,
            "conversation_initiation_client_data": {"dynamic_variables": dynamic_variables},
        }
        given_up = time.monotonic() + self.slot_wait
        while True:
            try:
                response = self._send("POST", "/v1/convai/twilio/outbound-call", json=body)
            except ElevenLabsConcurrency as error:
                pause = _slot_pause(error)
                if time.monotonic() + pause > given_up:
                    raise
                log.info("[dial] every ElevenLabs place is in use; trying again in %.1fs", pause)
                time.sleep(pause)
                continue
            return _parsed(OutboundCall, response)

    @http.retry_transient(ElevenLabsRetryable)
    def get_conversation(self, conversation_id: str) -> ConversationDetails:
        """`GET /v1/convai/conversations/{id}`: the conversation with its transcript."""
        response = self._send("GET", f"/v1/convai/conversations/{conversation_id}")
        return _parsed(ConversationDetails, response)

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return http.send(
            self._session,
            method,
            f"{self._base_url}{path}",
            timeout=self.timeout,
            retryable=ElevenLabsRetryable,
            fatal=ElevenLabsError,
            check=_check_429,
            budget=self._budget,
            **kwargs,
        )


@lru_cache
def default_client() -> ElevenLabsClient:
    """The configured client, its session and connections kept for the process's life."""
    settings = get_settings()
    key = settings.elevenlabs_api_key.get_secret_value() if settings.elevenlabs_api_key else ""
    # ElevenLabs limits requests in flight per account: every worker shares the places.
    slots = budgets.Slots(f"elevenlabs:key:{budgets.key_id(key)}", settings.elevenlabs_concurrency)
    # A dial waiting for a place must end well before its reservation is given up as unknown.
    slot_wait = min(settings.elevenlabs_slot_wait_seconds, settings.dial_lease_seconds / 4)
    return ElevenLabsClient(
        settings.elevenlabs_api_base_url, key, budget=slots, slot_wait=slot_wait
    )


def _check_429(response: requests.Response) -> None:
    """Tell ElevenLabs' two 429s apart by their `detail.status` (api-facts §2.1)."""
    if response.status_code != 429:
        return
    error = (
        ElevenLabsConcurrency
        if _detail_status(response) == TOO_MANY_CONCURRENT_REQUESTS
        else ElevenLabsBusy
    )
    retry_after = http.retry_after_seconds(response)
    raise error(http.describe(response), status=429, retry_after=retry_after)


def _detail_status(response: requests.Response) -> str | None:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return None
    return detail.get("status") if isinstance(detail, dict) else None


def _slot_pause(error: ElevenLabsConcurrency) -> float:
    """How long to wait before asking for a place again: the Retry-After if ElevenLabs gave
    one, else about half a second, jittered so that waiting dials do not come back at once."""
    if error.retry_after is not None:
        return min(error.retry_after, http.RETRY_AFTER_CAP)
    return SLOT_POLL_SECONDS * random.uniform(1, 1.5)


def _parsed(model: type[M], response: requests.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        path = response.request.path_url
        raise ElevenLabsError(f"malformed answer to {path}: {first_error(error)}") from error
