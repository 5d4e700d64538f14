"""Shared plumbing for provider clients: sessions, error mapping and transient retries.

Transport errors, 408, 409, 429 and 5xx are retryable; any other status >= 400 is not.
`retry_transient` retries them within the call, except a request that timed out: an answer
that did not come within the timeout (from sending to the body's last byte) is the attempt's
failure, left to the caller's durable retries (a queue row's backoff, a sync page's retry),
so that a provider that hangs costs one timeout per attempt rather than four.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlparse

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    before_sleep_log,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from app.budgets import Budget
from app.config import get_settings

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 409, 429})
RETRY_AFTER_CAP = 60.0
READ_CHUNK = 64 * 1024


class ProviderError(Exception):
    """A provider call failed in a way that retrying will not fix."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(ProviderError):
    """A timeout, connection failure, 408/409/429 or 5xx; `retry_after` if the server said.
    `timed_out`: no whole answer within the timeout, which is not retried within the call."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after
        self.timed_out = timed_out


class _PastDeadline(Exception):
    """The body was still coming in when the request's time was up."""


def build_session(
    base_url: str, headers: dict[str, str], *, connections: int = 10
) -> requests.Session:
    """A session for one provider sending `headers`, keeping up to `connections` connections
    alive (threads beyond that would open and drop a connection per request).

    The environment's proxy and CA bundle settings are resolved once, for `base_url`: requests
    would read them again on every request, a third of a request's CPU.
    """
    session = requests.Session()
    environment = session.merge_environment_settings(base_url, {}, None, None, None)
    session.proxies, session.verify = environment["proxies"], environment["verify"]
    session.trust_env = False
    session.headers.update(headers)
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=connections)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: float,
    retryable: type[RetryableError],
    fatal: type[ProviderError],
    check: Callable[[requests.Response], None] | None = None,
    budget: Budget | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One HTTP request whose failures are raised as the provider's own error classes;
    `check` may raise a more precise one first. With a `budget`, the request waits for it
    first, and a 429 holds the budget back for every process sharing it.

    `timeout` bounds the whole request, not only each read from the socket: an answer that
    trickles in a byte at a time is cut when it is up, as one that never comes is."""
    where = f"{method} {path_of(url)}"
    try:
        with budget.hold() if budget is not None else nullcontext():
            response = _request(session, method, url, timeout=timeout, **kwargs)
    except requests.ConnectTimeout as error:
        raise retryable(f"{where}: no connection within {timeout:g}s") from error
    except (requests.Timeout, urllib3.exceptions.ReadTimeoutError, _PastDeadline) as error:
        message = f"{where}: no answer within {timeout:g}s"
        raise retryable(message, timed_out=True) from error
    except (requests.RequestException, urllib3.exceptions.HTTPError) as error:
        raise retryable(f"{where}: {type(error).__name__}") from error
    if budget is not None and response.status_code == 429:
        budget.throttled(retry_after_seconds(response))
    if check is not None and response.status_code >= 400:
        check(response)
    raise_for_status(response, retryable=retryable, fatal=fatal)
    return response


def _request(
    session: requests.Session, method: str, url: str, *, timeout: float, **kwargs: Any
) -> requests.Response:
    """The response with its body read, all within `timeout` seconds of sending."""
    deadline = time.monotonic() + timeout
    response = session.request(method, url, timeout=timeout, stream=True, **kwargs)
    chunks = []
    sock = getattr(response.raw.connection, "sock", None)
    try:
        # read1 takes what has come (one read from the socket at most), so the deadline is
        # checked however slowly the bytes arrive, and each read may wait only until it.
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _PastDeadline
            if sock is not None:
                sock.settimeout(left)  # urllib3 sets the read timeout again for each request
            if not (chunk := response.raw.read1(READ_CHUNK, decode_content=True)):
                break
            chunks.append(chunk)
    except BaseException:
        response.raw.close()  # a connection with an unread body cannot serve another request
        raise
    response._content = b"".join(chunks)
    response._content_consumed = True  # type: ignore[attr-defined]
    response.close()  # the connection back to the pool
    return response


def raise_for_status(
    response: requests.Response, *, retryable: type[RetryableError], fatal: type[ProviderError]
) -> None:
    status = response.status_code
    if status < 400:
        return
    message = describe(response)
    if status in RETRYABLE_STATUSES or status >= 500:
        raise retryable(message, status=status, retry_after=retry_after_seconds(response))
    raise fatal(message, status=status)


def retry_after_seconds(response: requests.Response) -> float | None:
    """The Retry-After header in seconds (it may be a number or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC without saying so
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


P = ParamSpec("P")
R = TypeVar("R")


def retry_transient(
    exception: type[RetryableError],
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Retry a client method on `exception`, honouring Retry-After, else backing off; a
    request that timed out is not retried here (see the module's docstring)."""
    settings = get_settings()
    backoff = wait_exponential_jitter(
        multiplier=settings.http_retry_initial_seconds, max=settings.http_retry_max_seconds
    )

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableError) and error.retry_after is not None:
            return min(error.retry_after, RETRY_AFTER_CAP)
        return backoff(state)

    return retry(
        retry=retry_if_exception(
            lambda error: isinstance(error, exception) and not error.timed_out
        ),
        stop=stop_after_attempt(settings.http_retry_attempts),
        wait=wait,
        reraise=True,
        before_sleep=before_sleep_log(log, logging.WARNING),
    )


def describe(response: requests.Response) -> str:
    """`METHOD /path: HTTP status <body start>`, for error messages."""
    return f"{response.request.method} {path_of(response.url)}: HTTP {response.status_code} {_snippet(response)}"


def path_of(url: str) -> str:
    return urlparse(url).path


def _snippet(response: requests.Response) -> str:
    return response.text[:200].replace("\n", " ")
