"""Work run on a thread pool whose results are handed on in small groups as they finish.

A batch whose results are stored only when its slowest item ends makes every other item wait
for it: a throttled request, a retry's backoff or an answer that takes the whole timeout.
`in_groups` yields each result soon after it finishes instead, gathered into groups (one
transaction each for the caller) of up to `size` results or `seconds` after a group's first.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def in_groups(
    pool: Executor,
    work: Callable[[T], R],
    items: Iterable[T],
    *,
    size: int,
    seconds: float,
) -> Iterator[list[R]]:
    """Run `work` on each item in `pool`; yield the results in the order they finish, in
    groups of up to `size`, a group being handed on at most `seconds` after its first result.

    A `work` that raises re-raises here, when its result is taken. Items not yet started when
    the caller stops iterating (an error while storing a group) are cancelled.
    """
    finished: queue.SimpleQueue[Future[R]] = queue.SimpleQueue()
    futures = [pool.submit(work, item) for item in items]
    for future in futures:
        future.add_done_callback(finished.put)
    left = len(futures)
    try:
        while left:
            group = _group(finished, min(size, left), seconds)
            left -= len(group)
            yield group
    finally:
        for future in futures:
            future.cancel()


def _group(finished: queue.SimpleQueue[Future[R]], most: int, seconds: float) -> list[R]:
    """The next finished result, and those that finish within `seconds` of it, up to `most`."""
    group = [finished.get().result()]
    due = time.monotonic() + seconds
    while len(group) < most:
        wait = due - time.monotonic()
        if wait <= 0:
            break
        try:
            group.append(finished.get(timeout=wait).result())
        except queue.Empty:
            break
    return group
