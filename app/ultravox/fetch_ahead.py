"""Fetching a job's pages of calls ahead, in a thread, while the caller stores earlier ones.

Fetching a page is quicker than storing one, so the pages that arrive while one batch is
being stored are stored together as the next batch: one upsert and one commit for them all.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.ultravox.schemas import CALLS_PER_BATCH
from app.ultravox_api.client import cursor_from_next
from app.ultravox_api.schemas import CallsPage

PAGES_PER_BATCH = 20  # at most this many pages are stored together


class PageFailed(Exception):
    """Fetching or storing the page at `cursor` failed; the error is the cause."""

    def __init__(self, cursor: str | None) -> None:
        super().__init__(f"page at cursor {cursor!r} failed")
        self.cursor = cursor


@dataclass(frozen=True)
class Fetched:
    cursor: str | None  # the cursor the page was asked for at
    size: int  # the page size asked for
    page: CallsPage


@dataclass(frozen=True)
class _Failed:
    cursor: str | None
    error: Exception


_Item = Fetched | _Failed | None  # None: the fetcher has stopped


def _page_size(max_calls: int, imported: int) -> int:
    """CALLS_PER_BATCH, or fewer when max_calls is that close."""
    return max(0, min(CALLS_PER_BATCH, max_calls - imported))


class FetchAhead:
    """Follows `next` from `cursor` until the last page, max_calls or the deadline.

    `run` is the fetcher, for a thread; the caller takes the pages with `take` and calls
    `stop` when it is done with them.
    """

    def __init__(
        self,
        fetch: Callable[[str | None, int], CallsPage],
        cursor: str | None,
        *,
        max_calls: int,
        imported: int,
        deadline: float,
    ) -> None:
        self._fetch = fetch
        self._cursor = cursor
        self._max_calls = max_calls
        self._imported = imported
        self._deadline = deadline
        self._stopped = threading.Event()
        self._items: queue.Queue[_Item] = queue.Queue(maxsize=PAGES_PER_BATCH)
        self._held: list[_Item] = []  # the end or a failure, found behind pages taken first

    def run(self) -> None:
        cursor = self._cursor
        expected = self._imported  # as if every ended call fetched were new
        size = _page_size(self._max_calls, expected)
        try:
            while not self._stopped.is_set():
                page = self._fetch(cursor, size)
                self._items.put(Fetched(cursor, size, page))
                expected += sum(1 for call in page.results if call.ended is not None)
                cursor = cursor_from_next(page.next)
                full = page.received == size
                size = _page_size(self._max_calls, expected)
                if not (cursor and full and size) or time.monotonic() >= self._deadline:
                    break
        except Exception as error:
            self._items.put(_Failed(cursor, error))
        self._items.put(None)

    def take(self) -> list[Fetched]:
        """The pages fetched and not yet taken, waiting for one; [] once the fetcher stopped.

        A failed fetch raises PageFailed, once the pages fetched before it were taken.
        """
        item = self._held.pop() if self._held else self._items.get()
        pages: list[Fetched] = []
        while isinstance(item, Fetched):
            pages.append(item)
            if len(pages) == PAGES_PER_BATCH or self._items.empty():
                return pages
            item = self._items.get()
        if pages:
            self._held.append(item)
        elif isinstance(item, _Failed):
            raise PageFailed(item.cursor) from item.error
        return pages

    def stop(self) -> None:
        """Ask the fetcher to stop, and free its place in the queue if it waits for one."""
        self._stopped.set()
        while not self._items.empty():
            self._items.get_nowait()
