"""The ElevenLabs Conversational AI client (api-facts §2): xi-api-key auth, 30 s timeouts.

Placing a call is never retried here: a timeout or a 5xx may still have dialled the person,
and an attempt is dialled at most once. Reading a conversation is retried on transient errors.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, ValidationError

from app import budgets, http
from app.campaigns.schemas import ConversationDetails, OutboundCall
from app.config import get_settings
from app.validation import first_error

M = TypeVar("M", bound=BaseModel)


class ElevenLabsError(http.ProviderError):
    """ElevenLabs refused the request, or its answer was not what its schema says."""


class ElevenLabsRetryable(ElevenLabsError, http.RetryableError):
    """Timeout, connection failure, 408/409/429 or 5xx; `retry_after` set if the server said."""


class ElevenLabsClient:
    timeout = 30.0  # DESIGN.md: 30 s for ElevenLabs

    def __init__(
        self,
        base_url: str,
        api_key: str,
        session: requests.Session | None = None,
        *,
        budget: budgets.Budget | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._budget = budget
        self._session = session or http.build_session(self._base_url, {"xi-api-key": api_key})

    def outbound_call(
        self,
        *,
        agent_id: str,
        agent_phone_number_id: str,
        to_number: str,
        dynamic_variables: dict[str, str],
    ) -> OutboundCall:
        """`POST /v1/convai/twilio/outbound-call`, once. `success` may be false with a message."""
        body = {
            "agent_id": agent_id,
            "agent_phone_number_id": agent_phone_number_id,
            "to_number": to_number,
            "conversation_initiation_client_data": {"dynamic_variables": dynamic_variables},
        }
        response = self._send("POST", "/v1/convai/twilio/outbound-call", json=body)
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
    return ElevenLabsClient(settings.elevenlabs_api_base_url, key, budget=slots)


def _parsed(model: type[M], response: requests.Response) -> M:
    try:
        return model.model_validate_json(response.content)
    except ValidationError as error:
        path = response.request.path_url
        raise ElevenLabsError(f"malformed answer to {path}: {first_error(error)}") from error
