"""The Ultravox REST client (api-facts §1): X-API-Key auth, 30 s timeouts for a whole request,
transient retries (not of a timeout: that is the attempt's failure, app.http)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

import requests
from pydantic import ValidationError

from app import budgets, http
from app.config import get_settings
from app.transcripts import Message
from app.ultravox_api.schemas import CallsPage, MessagesPage, Page
from app.validation import first_error

MESSAGES_PAGE_SIZE = 100  # the maximum is UNCONFIRMED (api-facts §1.2); most calls fit one page
AnyPage = TypeVar("AnyPage", bound=Page)


class UltravoxError(http.ProviderError):
    """Ultravox answered with an error we do not retry (4xx other than 408/409/429)."""


class UltravoxRetryable(UltravoxError, http.RetryableError):
    """Timeout, connection failure, 408/409/429 or 5xx; `retry_after` set if the server said."""


class UltravoxMalformed(UltravoxError):
    """Ultravox answered 200 with a body that is not what its schema says."""


class UltravoxClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        session: requests.Session | None = None,
        *,
        connections: int = 10,
        timeout: float = 30.0,
        budget: budgets.Budget | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._budget = budget
        self._session = session or http.build_session(
            self._base_url, {"X-API-Key": api_key}, connections=connections
        )

    def close(self) -> None:
        self._session.close()

    @http.retry_transient(UltravoxRetryable)
    def list_calls(
        self,
        *,
        cursor: str | None,
        page_size: int,
        from_date: datetime | None,
        to_date: datetime | None,
    ) -> CallsPage:
        """One page of `GET /api/calls`, oldest first."""
        # The seed's created_after/created_before are the real API's fromDate/toDate (inclusive).
        params = {
            "cursor": cursor,
            "pageSize": page_size,
            "sort": "created",
            "fromDate": from_date.isoformat() if from_date else None,
            "toDate": to_date.isoformat() if to_date else None,
        }
        return self._get_page("/api/calls", params, CallsPage)

    def list_messages(self, call_id: uuid.UUID) -> list[Message]:
        """Every message of the call from all its stages (`mode=in_call`), page by page."""
        messages: list[Message] = []
        cursor = None
        while True:
            page = self._messages_page(call_id, cursor)
            messages.extend(page.results)
            cursor = cursor_from_next(page.next)
            if cursor is None:
                return messages

    @http.retry_transient(UltravoxRetryable)
    def _messages_page(self, call_id: uuid.UUID, cursor: str | None) -> MessagesPage:
        params = {"mode": "in_call", "pageSize": MESSAGES_PAGE_SIZE, "cursor": cursor}
        return self._get_page(f"/api/calls/{call_id}/messages", params, MessagesPage)

    def _get_page(self, path: str, params: dict[str, Any], model: type[AnyPage]) -> AnyPage:
        response = http.send(
            self._session,
            "GET",
            f"{self._base_url}{path}",
            params=params,
            timeout=self.timeout,
            retryable=UltravoxRetryable,
            fatal=UltravoxError,
            budget=self._budget,
        )
        try:
            return model.from_body(response.content)
        except ValidationError as error:
            raise UltravoxMalformed(
                f"malformed page from GET {path}: {first_error(error, root='body')}"
            ) from error


def budget(agency_id: uuid.UUID, api_key: str) -> budgets.Rates:
    """The key's budget shared by every process, then its account's if ULTRAVOX_ACCOUNTS
    puts the agency in one."""
    settings = get_settings()
    headroom = settings.rate_headroom_percent
    per_key = budgets.usable(settings.ultravox_rate_limit_per_key, headroom)
    rates = [budgets.Rate(f"ultravox:key:{budgets.key_id(api_key)}", per_key)]
    accounts = settings.ultravox_accounts.items()
    account = next((name for name, agencies in accounts if agency_id in agencies), None)
    if account is not None:
        per_account = budgets.usable(settings.ultravox_rate_limit_per_account, headroom)
        rates.append(budgets.Rate(f"ultravox:account:{account}", per_account))
    return budgets.Rates(rates)


def cursor_from_next(next_url: str | None) -> str | None:
    """The opaque cursor inside a page's absolute `next` URL."""
    if not next_url:
        return None
    values = parse_qs(urlparse(next_url).query).get("cursor")
    return values[0] if values else None
