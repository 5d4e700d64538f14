"""Work run on a thread pool whose results are handed on in small groups as they finish.

A batch whose results are stored only when its slowest item ends makes every other item wait
for it: a throttled request, a retry's backoff or an answer that takes the whole timeout.
A `Stream` hands each result on soon after it finishes instead, gathered into groups (one
transaction each for the caller) of up to `size` results or `seconds` after a group's first,
and takes more work while earlier work is still running.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Stream(Generic[T, R]):
    """`work` run on each submitted item in `pool`, its results taken in the order they finish.

    Use it as a context manager: on leaving, items not yet started are cancelled (the caller
    stopped on an error while storing a group, say). A `work` that raises re-raises where its
    result is taken.
    """

    def __init__(self, pool: Executor, work: Callable[[T], R]) -> None:
        self._pool = pool
        self._work = work
        self._finished: queue.SimpleQueue[Future[R]] = queue.SimpleQueue()
        self._futures: list[Future[R]] = []
        self.in_flight = 0  # submitted, and not yet taken

    def __enter__(self) -> Stream[T, R]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for future in self._futures:
            future.cancel()

    def submit(self, items: Iterable[T]) -> None:
        for item in items:
            future = self._pool.submit(self._work, item)
            future.add_done_callback(self._finished.put)
            self._futures.append(future)
            self.in_flight += 1

    def next_group(self, *, size: int, seconds: float) -> list[R]:
        """The next result to finish (waiting for it), and those that finish within `seconds`
        of it, up to `size` of them. Only while `in_flight`."""
        if not self.in_flight:
            raise ValueError("nothing is in flight")
        group = [self._take(None)]
        due = time.monotonic() + seconds
        while len(group) < size and self.in_flight:
            wait = due - time.monotonic()
            if wait <= 0:
                break
            try:
                group.append(self._take(wait))
            except queue.Empty:
                break
        self._futures = [f for f in self._futures if not f.done()]
        return group

    def _take(self, timeout: float | None) -> R:
        future = self._finished.get(timeout=timeout)
        self.in_flight -= 1
        return future.result()
