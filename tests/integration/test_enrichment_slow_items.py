"""A slow or hanging item does not hold its batch back: the others are stored as they finish,
and an answer that never comes (or never ends) fails its item within about the timeout, as
one attempt; against the fake Ultravox over HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.config import get_settings
from app.drains import Drained
from app.enrichment import service
from app.fakes.ultravox import FakeUltravox
from app.models import EnrichmentItem, EnrichmentType, ProcessingStatus
from app.ultravox import queries as ultravox_queries
from tests.helpers import make_agency, wait_for

# The default ULTRAVOX_TIMEOUT_SECONDS is 30: a request that never answers fails its attempt
# after 30 s (it took 4 tries, about 129 s, while the client retried timeouts itself).
TIMEOUT = 1.0


def completed(session: Session) -> list[EnrichmentItem]:
    session.expire_all()
    return list(
        session.scalars(
            select(EnrichmentItem).where(EnrichmentItem.status == ProcessingStatus.completed)
        )
    )


def store_ended(session: Session, fake: FakeUltravox, count: int) -> list[dict[str, Any]]:
    calls = [call for call in fake.calls if call["ended"] and call["joined"]][:count]
    ultravox_queries.upsert_calls(session, make_agency(session), calls)
    session.commit()
    return calls


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ULTRAVOX_TIMEOUT_SECONDS", str(TIMEOUT))
    get_settings.cache_clear()
    service._client.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    service._client.cache_clear()


def test_a_slow_item_does_not_hold_back_the_others(
    session: Session, fake_ultravox: FakeUltravox
) -> None:
    store_ended(session, fake_ultravox, 5)
    fake_ultravox.inject("slow", endpoint="messages", seconds=3)
    woken: list[float] = []
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        drain = pool.submit(
            service.drain_batch,
            batch_size=200,
            on_full_batch=lambda: None,
            on_transcripts=lambda: woken.append(time.monotonic() - started),
        )
        wait_for(lambda: len(completed(session)) == 4, timeout=2.5, what="the 4 quick items")
        assert not drain.done()  # the slow one is still on its way
        assert woken  # their analyses were asked for already
        assert woken[0] < 2.5
        result = drain.result(timeout=10)
    assert result == Drained(claimed=5, done={"transcripts": 5, "analyses": 0}, failed=0)
    assert time.monotonic() - started >= 3


def test_a_drain_claims_more_while_a_slow_item_holds_its_batch(
    session: Session, fake_ultravox: FakeUltravox
) -> None:
    """The process is not idle behind its slow item either: a full batch tops itself up, with
    the analyses its transcripts queued too."""
    store_ended(session, fake_ultravox, 12)
    fake_ultravox.inject("slow", endpoint="messages", seconds=4)

    def transcripts() -> int:
        return sum(item.type == EnrichmentType.transcript for item in completed(session))

    with ThreadPoolExecutor(1) as pool:
        drain = pool.submit(service.drain_batch, batch_size=4, on_full_batch=lambda: None)
        wait_for(lambda: transcripts() == 11, timeout=3.5, what="the 11 other transcripts")
        assert not drain.done()
        result = drain.result(timeout=10)
    assert result.done["transcripts"] == 12
    assert result.done["analyses"] >= 11  # claimed by the same drain as they came due
    assert result.claimed == 12 + result.done["analyses"]


@pytest.mark.usefixtures("short_timeout")
@pytest.mark.parametrize(
    ("fault", "params"),
    [
        ("slow", {"seconds": 3600}),  # no answer at all
        ("trickle", {"seconds": 3600}),  # an answer that dribbles in, a byte at a time
    ],
)
def test_an_answer_that_never_comes_fails_its_item_within_the_timeout(
    session: Session, fake_ultravox: FakeUltravox, fault: str, params: dict[str, Any]
) -> None:
    store_ended(session, fake_ultravox, 5)
    fake_ultravox.inject(fault, endpoint="messages", **params)
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        drain = pool.submit(service.drain_batch, batch_size=200, on_full_batch=lambda: None)
        wait_for(lambda: len(completed(session)) == 4, timeout=TIMEOUT, what="the others")
        result = drain.result(timeout=10)
    took = time.monotonic() - started
    assert result == Drained(claimed=5, done={"transcripts": 4, "analyses": 0}, failed=1)
    assert TIMEOUT <= took < TIMEOUT + 1.5  # one try, cut at the timeout
    session.expire_all()
    [item] = session.scalars(
        select(EnrichmentItem).where(EnrichmentItem.status == ProcessingStatus.failed)
    )
    assert item.attempts == 1  # retried later by the queue's backoff, dead after max_attempts
    assert item.type == EnrichmentType.transcript
    assert item.error_message
    assert f"no answer within {TIMEOUT:g}s" in item.error_message
    tries = [p for _, p, _ in fake_ultravox.requests_seen if p.endswith("/messages")]
    assert len(tries) == 5  # the stuck one was not tried again inside the request


def test_an_answer_that_trickles_in_within_the_timeout_is_read(fake_ultravox: FakeUltravox) -> None:
    """The deadline is the whole request's: a slow body that ends in time is a good answer."""
    from app.ultravox_api.client import UltravoxClient
    from tests.conftest import ULTRAVOX_API_KEY

    call = next(c for c in fake_ultravox.calls if c["ended"] and c["joined"])
    fake_ultravox.inject("trickle", endpoint="messages", seconds=0.5)
    client = UltravoxClient(get_settings().ultravox_api_base_url, ULTRAVOX_API_KEY, timeout=5)
    messages = client.list_messages(uuid.UUID(call["callId"]))
    assert [m.text for m in messages] == [m["text"] for m in fake_ultravox.messages(call)]


@pytest.mark.usefixtures("short_timeout")
def test_an_item_whose_answer_never_comes_is_dead_after_its_attempts(
    session: Session, fake_ultravox: FakeUltravox
) -> None:
    """One timeout per attempt: at the defaults (30 s, retries after 30 s and 60 s plus jitter),
    dead 3 to 5 minutes after the first try, where it took about 10 minutes before."""
    store_ended(session, fake_ultravox, 1)
    fake_ultravox.inject("slow", times=3, endpoint="messages", seconds=3600)
    for attempt in (1, 2, 3):
        assert service.drain_batch(batch_size=200, on_full_batch=lambda: None).failed == 1
        session.expire_all()
        [item] = session.scalars(select(EnrichmentItem))
        assert (item.status, item.attempts) == (ProcessingStatus.failed, attempt)
        if attempt < 3:
            session.execute(update(EnrichmentItem).values(next_retry_at=func.now()))  # time passes
            session.commit()
    assert item.next_retry_at is None  # dead: the queue will not try it again
    assert service.drain_batch(batch_size=200, on_full_batch=lambda: None).claimed == 0
    assert len([p for _, p, _ in fake_ultravox.requests_seen if p.endswith("/messages")]) == 3
