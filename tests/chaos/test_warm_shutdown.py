"""A warm shutdown (SIGTERM, as a deploy sends) in the middle of an enrichment drain: the drain
takes no more work, finishes what it holds, and the worker exits within seconds, leaving the
rest pending for the next worker."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.orm import Session

from app import drains
from app.fakes.ultravox import FakeUltravox, generate_calls
from app.models import EnrichmentItem, EnrichmentType, ProcessingStatus
from app.ultravox import queries as ultravox_queries
from tests.chaos.conftest import count
from tests.helpers import Worker, make_agency, wait_for

TRANSCRIPTS = 3_000  # about 16 s at the key's budget, if the drain went on


def test_a_warm_shutdown_mid_drain_takes_no_more_and_ends_what_it_holds(
    session: Session,
    fake_ultravox: FakeUltravox,
    chaos_worker: Callable[..., Worker],
    report: Callable[..., None],
) -> None:
    calls = generate_calls(TRANSCRIPTS, seed=77, live_every=0)
    fake_ultravox.add_calls(calls)
    fake_ultravox.latency = 0.1
    ultravox_queries.upsert_calls(session, make_agency(session), calls)
    session.commit()
    worker = chaos_worker("enrichment")
    drains.ENRICHMENT.request()
    transcript = EnrichmentItem.type == EnrichmentType.transcript
    done = EnrichmentItem.status == ProcessingStatus.completed
    wait_for(lambda: count(EnrichmentItem, transcript, done) >= 200, what="a batch stored")
    at_sigterm, started = count(EnrichmentItem, transcript, done), time.monotonic()
    worker.stop()  # SIGTERM; killed after 20 s if it has not exited
    took = time.monotonic() - started
    stored = count(EnrichmentItem, transcript, done)
    held = count(EnrichmentItem, EnrichmentItem.status == ProcessingStatus.processing)
    report(
        "warm shutdown mid-drain",
        f"SIGTERM once {at_sigterm} of {TRANSCRIPTS:,} transcripts were stored",
        f"exited after {took:.1f}s (code {worker.process.returncode}), {stored} stored by then; "
        f"{held} items left processing; {TRANSCRIPTS - stored:,} left for the next worker",
        worker.process.returncode == 0 and held == 0 and stored < TRANSCRIPTS,
    )
    assert worker.process.returncode == 0  # it exited by itself, not killed
    assert took < 10
    assert held == 0  # what it held was finished, none left to a lease
    assert stored < TRANSCRIPTS  # it stopped taking more
