"""The Salesforce REST client (api-facts §3): SOQL queries with nextRecordsUrl, the OAuth
refresh-token grant, 60 s timeouts (30 s for OAuth).

Errors:

    SalesforceError                    not retried: a 4xx we cannot fix by waiting
    ├── SalesforceSessionExpired       401 INVALID_SESSION_ID: refresh the token once
    ├── SalesforceReauthRequired       invalid_grant: a person must authorise again
    └── SalesforceRetryable            connection, 408/409, 5xx: retried 3 times; a timeout fails
                                       the run at once (app.http)
        └── SalesforceRateLimited      403 REQUEST_LIMIT_EXCEEDED, 429, 503: back off, end partial
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import requests

from app import http

API_VERSION = "v60.0"
OAUTH_TIMEOUT = 30.0  # seed 003: OAuth token refresh, 30 seconds


class SalesforceError(http.ProviderError):
    """Salesforce refused the request; waiting will not help."""


class SalesforceSessionExpired(SalesforceError):
    """401 INVALID_SESSION_ID: the access token expired or was revoked."""


class SalesforceReauthRequired(SalesforceError):
    """The refresh token was refused (invalid_grant): the integration must be authorised again."""


class SalesforceRetryable(SalesforceError, http.RetryableError):
    """Timeout, connection failure, 408/409 or 5xx; `retry_after` set if the server said."""


class SalesforceRateLimited(SalesforceRetryable):
    """403 REQUEST_LIMIT_EXCEEDED (what core REST sends), 429 or 503: the org's limits."""


class SalesforceReserveReached(SalesforceRateLimited):
    """What is left of the org's daily allocation is the reserve kept for its other users."""


def api_usage(limit_info: str | None) -> tuple[int, int] | None:
    """(used, allocation) from a Sforce-Limit-Info header (`api-usage=18/5000; ...`)."""
    for part in (limit_info or "").split(";"):
        name, _, value = part.strip().partition("=")
        used, _, allocation = value.partition("/")
        if name == "api-usage" and used.isdigit() and allocation.isdigit():
            return int(used), int(allocation)
    return None


def error_codes(response: requests.Response) -> list[str]:
    """The errorCode values of Salesforce's error array, if the body is one."""
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, list):
        return []
    return [str(item.get("errorCode")) for item in body if isinstance(item, dict)]


def _check(response: requests.Response) -> None:
    codes, status = error_codes(response), response.status_code
    message = http.describe(response)
    if status == 401 and "INVALID_SESSION_ID" in codes:
        raise SalesforceSessionExpired(message, status=status)
    if status in (429, 503) or (status == 403 and "REQUEST_LIMIT_EXCEEDED" in codes):
        retry_after = http.retry_after_seconds(response)
        raise SalesforceRateLimited(message, status=status, retry_after=retry_after)


class SalesforceClient:
    timeout = 60.0  # DESIGN.md: 60 s for Salesforce

    def __init__(
        self,
        instance_url: str,
        access_token: str,
        *,
        refresh: Callable[[], str],
        session: requests.Session | None = None,
        reserve_percent: float = 0.0,
    ) -> None:
        self.reserve_percent = reserve_percent
        self._instance_url = instance_url.rstrip("/")
        self._token = access_token
        self._refresh = refresh
        self._session = session or http.build_session(self._instance_url, {})
        self.limit_info: str | None = None  # the last Sforce-Limit-Info header

    def close(self) -> None:
        self._session.close()

    def query(self, soql: str, *, batch_size: int = 2000) -> Iterator[list[dict[str, Any]]]:
        """The query's records, a batch at a time, following nextRecordsUrl until done."""
        url = f"{self._instance_url}/services/data/{API_VERSION}/query"
        params: dict[str, str] | None = {"q": soql}
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        while True:
            page = self._get(url, params, headers)
            yield page["records"]
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            url, params = f"{self._instance_url}{page['nextRecordsUrl']}", None

    def _get(
        self, url: str, params: dict[str, str] | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        self._check_reserve()
        try:
            return self._get_once(url, params, headers)
        except SalesforceSessionExpired:
            self._token = self._refresh()  # once; a second 401 is an error
            return self._get_once(url, params, headers)

    @http.retry_transient(SalesforceRetryable)
    def _get_once(
        self, url: str, params: dict[str, str] | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        response = http.send(
            self._session,
            "GET",
            url,
            params=params,
            timeout=self.timeout,
            headers={**headers, "Authorization": f"Bearer {self._token}"},
            retryable=SalesforceRetryable,
            fatal=SalesforceError,
            check=_check,
        )
        self.limit_info = response.headers.get("Sforce-Limit-Info")
        try:
            body: dict[str, Any] = response.json()
            body["records"]
        except (ValueError, KeyError, TypeError) as error:
            raise SalesforceError(f"malformed query answer from {url}: {error}") from error
        return body

    def _check_reserve(self) -> None:
        """End the run before the next request once only the reserve is left."""
        if _reserve_reached(api_usage(self.limit_info), self.reserve_percent):
            raise SalesforceReserveReached(
                f"the org's daily API allocation is down to its {self.reserve_percent:g}% "
                f"reserve ({self.limit_info})"
            )


def _reserve_reached(usage: tuple[int, int] | None, percent: float) -> bool:
    if usage is None:
        return False
    used, allocation = usage
    return allocation - used <= allocation * percent / 100


def refresh_access_token(
    login_url: str, *, client_id: str, client_secret: str, refresh_token: str
) -> dict[str, Any]:
    """The OAuth refresh_token grant: the new access_token, instance_url, and a new
    refresh_token when the app rotates them."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    with http.build_session(login_url, {}) as session:
        response = http.send(
            session,
            "POST",
            f"{login_url.rstrip('/')}/services/oauth2/token",
            data=form,
            timeout=OAUTH_TIMEOUT,
            retryable=SalesforceRetryable,
            fatal=SalesforceError,
            check=_check_oauth,
        )
        return dict(response.json())


def _check_oauth(response: requests.Response) -> None:
    """invalid_grant (HTTP 400) means a person must authorise again."""
    try:
        body = json.loads(response.text)
    except ValueError:
        return
    if (
        response.status_code == 400
        and isinstance(body, dict)
        and body.get("error") == "invalid_grant"
    ):
        raise SalesforceReauthRequired(f"token refresh refused: {http.describe(response)}")
