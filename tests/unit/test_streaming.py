"""streaming.in_groups: results come out as they finish, in groups bounded by size and time."""

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

    with ThreadPoolExecutor(max_workers=10) as pool:
        groups = streaming.in_groups(pool, work, range(10), size=4, seconds=0.5)
        first = [next(groups), next(groups)]
        assert [len(group) for group in first] == [4, 4]  # full groups, without the slow one
        third = next(groups)  # the eighth and ninth, handed on when their time is up
        assert sorted(third) == sorted(set(range(1, 10)) - {n for g in first for n in g})
        release.set()
        assert list(groups) == [[0]]


def test_a_group_is_handed_on_within_its_seconds() -> None:
    release = threading.Event()

    def work(n: int) -> int:
        if n:
            release.wait(10)
        return n

    with ThreadPoolExecutor(max_workers=2) as pool:
        groups = streaming.in_groups(pool, work, range(2), size=10, seconds=0.1)
        started = time.monotonic()
        assert next(groups) == [0]
        assert time.monotonic() - started < 2
        release.set()
        assert list(groups) == [[1]]


def test_an_error_is_raised_where_its_result_is_taken_and_the_rest_are_cancelled() -> None:
    ran: list[int] = []

    def work(n: int) -> int:
        if n == 0:
            raise ValueError("boom")
        time.sleep(0.05)
        ran.append(n)
        return n

    with ThreadPoolExecutor(max_workers=1) as pool:
        groups = streaming.in_groups(pool, work, range(20), size=1, seconds=0)
        with pytest.raises(ValueError, match="boom"):
            next(groups)
    assert len(ran) < 19  # those not started were cancelled
