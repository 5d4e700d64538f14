"""Provider budgets shared through Redis: even spacing across processes, a 429's hold, slots
that expire, and the Ultravox client at the default settings against the fake's real limits."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from app import budgets
from app.fakes.ultravox import FakeUltravox
from app.ultravox_api.client import UltravoxClient, budget
from tests.conftest import ULTRAVOX_API_KEY

pytestmark = pytest.mark.usefixtures("clean_tables")


def test_a_rate_spaces_requests_evenly_across_processes() -> None:
    """Two processes take 15 slots each from one budget of 10 a second: one every 0.1 s."""
    script = (
        "import time\n"
        "from app import budgets\n"
        "rates = budgets.Rates([budgets.Rate('test:shared', 10)])\n"
        "for _ in range(15):\n"
        "    rates.take()\n"
        "    print(time.time(), flush=True)\n"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    stamps = sorted(float(line) for w in workers for line in w.communicate(timeout=30)[0].split())
    assert len(stamps) == 30
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # Evenly spaced, not a window's worth at once: no two slots closer than a slot (less the
    # jitter of printing), and the 30 spread over 2.9 s.
    assert min(gaps) >= 0.07, gaps
    assert stamps[-1] - stamps[0] >= 2.8


def test_a_429_holds_back_every_process_sharing_the_budget() -> None:
    one, other = (budgets.Rates([budgets.Rate("test:held", 1000)]) for _ in range(2))
    one.take()
    one.throttled(0.5)
    started = time.monotonic()
    other.take()
    assert time.monotonic() - started >= 0.45


def test_a_429_without_retry_after_holds_back_a_second() -> None:
    rates = budgets.Rates([budgets.Rate("test:held-default", 1000)])
    rates.throttled(None)
    started = time.monotonic()
    rates.take()
    assert time.monotonic() - started >= 0.9


def test_slots_hold_at_most_their_limit_and_a_dead_holders_place_expires() -> None:
    slots = budgets.Slots("test:slots", 2, expiry=0.5)
    inside: list[None] = []
    dying = slots.hold()  # entered and never left: as a process killed holding its place

    with slots.hold(), slots.hold():
        third = threading.Thread(target=lambda: inside.append(dying.__enter__()))
        third.start()
        time.sleep(0.2)
        assert not inside  # both places are taken
    third.join(timeout=2)
    assert inside == [None]  # a place freed
    started = time.monotonic()
    with slots.hold(), slots.hold():  # the third's place expires after 0.5 s
        assert time.monotonic() - started >= 0.2


def test_the_ultravox_client_stays_under_the_keys_limit(fake_ultravox: FakeUltravox) -> None:
    """40 threads asking as fast as they can for 1.5 s, at the default settings: the fake's
    200/s per key is not passed, so it answers no 429, and the budget is used."""
    from app.config import get_settings

    settings = get_settings()
    client = UltravoxClient(
        settings.ultravox_api_base_url,
        ULTRAVOX_API_KEY,
        connections=40,
        budget=budget(uuid.uuid4(), ULTRAVOX_API_KEY),
    )
    deadline = time.monotonic() + 1.5

    def ask() -> int:
        made = 0
        while time.monotonic() < deadline:
            client.list_calls(cursor=None, page_size=1, from_date=None, to_date=None)
            made += 1
        return made

    started = time.monotonic()
    with ThreadPoolExecutor(40) as pool:
        made = sum(pool.map(lambda _: ask(), range(40)))
    rate = made / (time.monotonic() - started)
    assert fake_ultravox.throttled[ULTRAVOX_API_KEY] <= made // 100
    assert rate <= 200
    assert rate >= 100  # well above what a loaded machine misses of 190/s


def test_the_keys_of_one_ultravox_account_share_its_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """ULTRAVOX_ACCOUNTS puts two agencies in one account of 20 requests/s: their two keys,
    each allowed far more, take 20 slots in about a second together."""
    from app.config import get_settings

    one, other, alone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    monkeypatch.setenv("ULTRAVOX_ACCOUNTS", f'{{"acme": ["{one}", "{other}"]}}')
    monkeypatch.setenv("ULTRAVOX_RATE_LIMIT_PER_ACCOUNT", "20")
    get_settings.cache_clear()
    try:
        shared = [budget(one, "key-one"), budget(other, "key-other")]
        assert len(budget(alone, "key-alone").rates) == 1  # in no account: its key's rate only
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert shared[0].rates[1].name == shared[1].rates[1].name == "ultravox:account:acme"
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda rates: [rates.take() for _ in range(10)], shared))
    # 19 a second (5 % below the limit): the 20th slot comes 19/19 s after the first.
    assert time.monotonic() - started >= 0.9
