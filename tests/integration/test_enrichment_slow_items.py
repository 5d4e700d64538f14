"""A slow item does not hold its batch back: the others are stored as they finish; against
the fake Ultravox over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.drains import Drained
from app.enrichment import service
from app.fakes.ultravox import FakeUltravox
from app.models import EnrichmentItem, ProcessingStatus
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
