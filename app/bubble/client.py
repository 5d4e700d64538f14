"""The Bubble Data API client (api-facts §4): Bearer admin token, a shared requests-per-minute
budget, transient retries (429 and 503 back off, honouring Retry-After). Bubble's errors are
raised with its own `body.message`."""

from __future__ import annotations

import json
from typing import Any

import requests

from app import budgets, http


class BubbleError(http.ProviderError):
    """Bubble refused the request (400 bad field or value, 401, 404 missing data or type);
    `kind` is its `body.status` (e.g. MISSING_DATA) when it answered in its error shape."""

    kind: str | None = None


class BubbleRetryable(BubbleError, http.RetryableError):
    """Timeout, connection failure, 408/409/429 or 5xx; `retry_after` set if the server said."""


def is_gone(error: BubbleError) -> bool:
    """The record is not there (a missing type or Data API setting is another 404)."""
    return error.status == 404 and error.kind == "MISSING_DATA"


class BubbleClient:
    timeout = 30.0

    def __init__(self, base_url: str, token: str, budget: budgets.Budget) -> None:
        self._base_url = base_url.rstrip("/")
        self._budget = budget
        self._session = http.build_session(self._base_url, {"Authorization": f"Bearer {token}"})

    def create(self, type_name: str, fields: dict[str, Any]) -> str:
        """`POST /obj/<type>`: the new record's id."""
        body = self._send("POST", f"/obj/{type_name}", json=fields).json()
        return str(body["id"])

    def modify(self, type_name: str, record_id: str, fields: dict[str, Any]) -> None:
        """`PATCH /obj/<type>/<id>`, answered 204."""
        self._send("PATCH", f"/obj/{type_name}/{record_id}", json=fields)

    def delete(self, type_name: str, record_id: str) -> bool:
        """`DELETE /obj/<type>/<id>`; False when the record was already gone."""
        try:
            self._send("DELETE", f"/obj/{type_name}/{record_id}")
        except BubbleError as error:
            if is_gone(error):
                return False
            raise
        return True

    def find(self, type_name: str, field: str, value: Any) -> str | None:
        """The id of a record whose `field` equals `value`, if there is one."""
        constraints = [{"key": field, "constraint_type": "equals", "value": value}]
        response = self._send(
            "GET", f"/obj/{type_name}", params={"constraints": json.dumps(constraints), "limit": 1}
        )
        results = response.json()["response"]["results"]
        return str(results[0]["_id"]) if results else None

    @http.retry_transient(BubbleRetryable)
    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return http.send(
            self._session,
            method,
            f"{self._base_url}{path}",
            timeout=self.timeout,
            retryable=BubbleRetryable,
            fatal=BubbleError,
            check=_check,
            budget=self._budget,
            **kwargs,
        )


def _check(response: requests.Response) -> None:
    """Raise Bubble's error with its message, when the body is its error shape (api-facts §4.3)."""
    try:
        body = response.json()["body"]
        kind, message = str(body["status"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        return  # not Bubble's shape: http.raise_for_status describes it
    status = response.status_code
    where = f"{response.request.method} {http.path_of(response.url)}: HTTP {status}"
    error: BubbleError
    if status in http.RETRYABLE_STATUSES or status >= 500:
        error = BubbleRetryable(
            f"{where} {message}", status=status, retry_after=http.retry_after_seconds(response)
        )
    else:
        error = BubbleError(f"{where} {message}", status=status)
    error.kind = kind
    raise error
