"""Waiting for a condition to hold: the one poll loop of the demo, the fakes and the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")


def poll(condition: Callable[[], T], *, timeout: float, interval: float) -> T:
    """Call `condition` every `interval` seconds until its value is truthy, and return that
    value; TimeoutError after `timeout` seconds. An exception of `condition` is raised at once."""
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda value: not value),
    )
    try:
        return retrying(condition)
    except RetryError:
        raise TimeoutError(f"not done after {timeout} s") from None
