"""streaming.Stream: results come out as they finish, in groups bounded by size and time, and
more work may join while earlier work runs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app import streaming


def test_results_come_in_groups_as_they_finish_and_a_slow_one_comes_last() -> None:
    release = threading.Event()

    def work(n: int) -> int:
        if n == 0:
            release.wait(10)  # the slow one
        return n

    with ThreadPoolExecutor(max_workers=10) as pool, streaming.Stream(pool, work) as stream:
        stream.submit(range(10))
        first = [stream.next_group(size=4, seconds=0.5) for _ in range(2)]
        assert [len(group) for group in first] == [4, 4]  # full groups, without the slow one
        third = stream.next_group(size=4, seconds=0.5)  # the ninth, when its time is up
        assert sorted(third) == sorted(set(range(1, 10)) - {n for g in first for n in g})
        assert stream.in_flight == 1
        release.set()
        assert stream.next_group(size=4, seconds=0.5) == [0]
        assert stream.in_flight == 0


def test_a_group_is_handed_on_within_its_seconds_and_more_work_can_join() -> None:
    release = threading.Event()

    def work(n: int) -> int:
        if n == 1:
            release.wait(10)
        return n

    with ThreadPoolExecutor(max_workers=4) as pool, streaming.Stream(pool, work) as stream:
        stream.submit(range(2))
        started = time.monotonic()
        assert stream.next_group(size=10, seconds=0.1) == [0]
        assert time.monotonic() - started < 2
        stream.submit([2, 3])  # while 1 still runs
        assert sorted(stream.next_group(size=2, seconds=1)) == [2, 3]
        release.set()
        assert stream.next_group(size=10, seconds=0.1) == [1]
        with pytest.raises(ValueError, match="nothing is in flight"):
            stream.next_group(size=1, seconds=0)


def test_an_error_is_raised_where_its_result_is_taken_and_the_rest_are_cancelled() -> None:
    ran: list[int] = []

    def work(n: int) -> int:
        if n == 0:
            raise ValueError("boom")
        time.sleep(0.05)
        ran.append(n)
        return n

    with ThreadPoolExecutor(max_workers=1) as pool, streaming.Stream(pool, work) as stream:
        stream.submit(range(20))
        with pytest.raises(ValueError, match="boom"):
            stream.next_group(size=1, seconds=0)
    assert len(ran) < 19  # leaving the stream cancelled those not started
