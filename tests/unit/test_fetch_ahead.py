"""Fetching pages ahead: what the storing side is given, in order, and how the fetcher stops."""

from __future__ import annotations

import json
import threading
import time

import pytest

from app.fakes.ultravox import generate_calls
from app.ultravox.fetch_ahead import PAGES_PER_BATCH, FetchAhead, Fetched, PageFailed
from app.ultravox_api.client import UltravoxRetryable
from app.ultravox_api.schemas import CallsPage
from tests.helpers import wait_for

CALLS = generate_calls(2000, live_every=0)


class Pages:
    """A list endpoint over CALLS whose cursor is the offset; it can fail at one cursor."""

    def __init__(self, *, fail_at: str | None = None) -> None:
        self.fail_at = fail_at
        self.asked: list[tuple[str | None, int]] = []

    def __call__(self, cursor: str | None, size: int) -> CallsPage:
        self.asked.append((cursor, size))
        if cursor is not None and cursor == self.fail_at:
            raise UltravoxRetryable("HTTP 503 from GET /api/calls")
        offset = int(cursor or 0)
        results = CALLS[offset : offset + size]
        more = offset + size < len(CALLS)
        next_url = f"https://api.ultravox.ai/api/calls?cursor={offset + size}" if more else None
        body = json.dumps({"next": next_url, "results": results, "total": len(CALLS)})
        return CallsPage.from_body(body.encode())


def take_all(ahead: FetchAhead) -> list[Fetched]:
    fetched: list[Fetched] = []
    while batch := ahead.take():
        assert 1 <= len(batch) <= PAGES_PER_BATCH
        fetched += batch
    return fetched


def started(ahead: FetchAhead) -> threading.Thread:
    thread = threading.Thread(target=ahead.run, daemon=True)
    thread.start()
    return thread


def test_pages_come_in_order_and_stop_where_max_calls_would_be_reached() -> None:
    pages = Pages()
    ahead = FetchAhead(pages, "100", max_calls=220, imported=100, deadline=time.monotonic() + 60)
    started(ahead)
    fetched = take_all(ahead)
    assert [(f.cursor, f.size) for f in fetched] == [("100", 50), ("150", 50), ("200", 20)]
    assert [str(call.callId) for f in fetched for call in f.page.results] == [
        call["callId"] for call in CALLS[100:220]
    ]
    assert json.loads(fetched[0].page.body)["results"] == CALLS[100:150]  # the page as it came


def test_a_failed_fetch_is_raised_after_the_pages_before_it() -> None:
    pages = Pages(fail_at="150")
    ahead = FetchAhead(pages, None, max_calls=10_000, imported=0, deadline=time.monotonic() + 60)
    started(ahead).join(timeout=10)  # everything is queued before the first take
    assert [f.cursor for f in ahead.take()] == [None, "50", "100"]
    with pytest.raises(PageFailed) as failed:
        ahead.take()
    assert failed.value.cursor == "150"
    assert isinstance(failed.value.__cause__, UltravoxRetryable)


def test_the_fetcher_stops_at_the_deadline() -> None:
    pages = Pages()
    ahead = FetchAhead(pages, None, max_calls=10_000, imported=0, deadline=time.monotonic())
    started(ahead)
    assert [f.cursor for f in take_all(ahead)] == [None]


def test_stop_frees_a_fetcher_waiting_for_room() -> None:
    pages = Pages()
    ahead = FetchAhead(pages, None, max_calls=10_000, imported=0, deadline=time.monotonic() + 60)
    thread = started(ahead)
    # The queue fills; the fetcher then waits with one more page.
    wait_for(lambda: len(pages.asked) > PAGES_PER_BATCH, what="the fetcher to fill the queue")
    assert len(ahead.take()) == PAGES_PER_BATCH
    ahead.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(pages.asked) < len(CALLS) // 50  # it stopped long before the last page
