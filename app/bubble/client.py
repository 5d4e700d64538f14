"""The Bubble Data API client (api-facts §4): Bearer admin token, a shared requests-per-minute
budget, transient retries (429 and 503 back off, honouring Retry-After)."""

from __future__ import annotations

import json
from typing import Any

import requests

from app import http
from app.bubble.ratelimit import RateLimiter

KEY_FIELD = "callsync_key"  # our own key on every record we create, to find it again


class BubbleError(http.ProviderError):
    """Bubble refused the request (400 bad field or value, 401, 404 missing data or type)."""


class BubbleRetryable(BubbleError, http.RetryableError):
    """Timeout, connection failure, 408/409/429 or 5xx; `retry_after` set if the server said."""


class BubbleClient:
    timeout = 30.0

    def __init__(self, base_url: str, token: str, limiter: RateLimiter) -> None:
        self._base_url = base_url.rstrip("/")
        self._limiter = limiter
        self._session = http.build_session(self._base_url, {"Authorization": f"Bearer {token}"})

    def create(self, type_name: str, fields: dict[str, Any]) -> str:
        """`POST /obj/<type>`: the new record's id."""
        body = self._send("POST", f"/obj/{type_name}", json=fields).json()
        return str(body["id"])

    def modify(self, type_name: str, record_id: str, fields: dict[str, Any]) -> None:
        """`PATCH /obj/<type>/<id>`, answered 204."""
        self._send("PATCH", f"/obj/{type_name}/{record_id}", json=fields)

    def delete(self, type_name: str, record_id: str) -> None:
        """`DELETE /obj/<type>/<id>`; a record already gone is fine."""
        try:
            self._send("DELETE", f"/obj/{type_name}/{record_id}")
        except BubbleError as error:
            if error.status != 404:
                raise

    def find_by_key(self, type_name: str, key: str) -> str | None:
        """The id of the record we created with `key`, if there is one."""
        constraints = [{"key": KEY_FIELD, "constraint_type": "equals", "value": key}]
        response = self._send(
            "GET", f"/obj/{type_name}", params={"constraints": json.dumps(constraints)}
        )
        results = response.json()["response"]["results"]
        return str(results[0]["_id"]) if results else None

    @http.retry_transient(BubbleRetryable)
    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        self._limiter.take()
        return http.send(
            self._session, method, f"{self._base_url}{path}", timeout=self.timeout,
            retryable=BubbleRetryable, fatal=BubbleError, **kwargs,
        )  # fmt: skip
