"""process-enrichment-queue's work: fetch transcripts and analyse them, a batch at a time.

The work waits on the network, so a batch runs up to ENRICHMENT_CONCURRENCY items at once on
threads; nothing is open in the database meanwhile. Results are stored as they finish, in
groups of up to STORE_EVERY_ITEMS or STORE_EVERY_SECONDS after a group's first result, one
transaction per group: an item that waits for budget, for a retry or for its timeout holds
back no other item's result. Nor does it hold back the process: once only a tenth of a full
batch is still out, the drain claims more (each claim its own lease), for up to
ENRICHMENT_TOP_UP_SECONDS and not once the worker is shutting down. An item that failed is
retried later with backoff (attempts + 1, next_retry_at), and is dead after max_attempts
until replayed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import agencies, db, drains, http, pauses, queue, shutdown, streaming
from app.config import Settings, get_settings
from app.drains import Drained
from app.enrichment import queries
from app.enrichment.analyzers import Analyzer, build_analyzer
from app.enrichment.queries import Enriched
from app.models import EnrichmentType
from app.transcripts import Message
from app.ultravox_api.client import UltravoxClient, budget

log = logging.getLogger(__name__)

MESSAGES = TypeAdapter(list[Message])
# A group of finished items is stored when it has this many, or this long after its first.
STORE_EVERY_ITEMS = 50
STORE_EVERY_SECONDS = 0.2
# A drain whose first claim was full claims more once only this share of a batch is left (its
# stragglers), for up to ENRICHMENT_TOP_UP_SECONDS; then it ends once what it holds is done
# (at most a request's timeout later). Sooner only adds threads waiting for the same budget.
TOP_UP_WHEN_LEFT = 0.1


@dataclass(frozen=True)
class Failed:
    item_id: uuid.UUID
    reason: str


@dataclass(frozen=True)
class Held:
    """A transcript waiting for its agency's Ultravox key: given back, no attempt counted."""

    item_id: uuid.UUID
    agency_id: uuid.UUID
    reason: str


Result = Enriched | Failed | Held


@dataclass(frozen=True)
class _Job:
    """An item to run, the lease it was claimed under, and its agency's client if it has one."""

    lease: queue.Lease
    item: Row[Any]
    client: UltravoxClient | None


@dataclass
class _Tally:
    claimed: int = 0
    stored: Counter[EnrichmentType] = field(default_factory=Counter)
    failed: int = 0

    def drained(self) -> Drained:
        kinds = {
            "transcripts": self.stored[EnrichmentType.transcript],
            "analyses": self.stored[EnrichmentType.analysis],
        }
        return Drained(self.claimed, kinds, self.failed)


def drain_batch(
    *,
    batch_size: int,
    on_full_batch: Callable[[], object],
    on_transcripts: Callable[[], object] = lambda: None,
) -> Drained:
    """Claim up to `batch_size` due items, run them, store what they found as they finish.

    A full batch suggests more are waiting, as does an item taken alone (one a dead worker
    held): `on_full_batch` runs before the work, so that another worker can start on the
    next batch meanwhile. A full batch's drain also claims more whenever only a tenth of a
    batch is left, for up to ENRICHMENT_TOP_UP_SECONDS (not once the worker is stopping).
    `on_transcripts` runs after each group that stored transcripts (their analyses are
    queued), while the drain goes on.
    """
    settings = get_settings()
    jobs = _claim(batch_size, settings)
    tally = _Tally(claimed=len(jobs))
    if not jobs:
        return tally.drained()
    full = len(jobs) == batch_size
    if full or jobs[0].lease.alone:
        on_full_batch()
    top_up_until = time.monotonic() + settings.enrichment_top_up_seconds if full else 0.0
    with streaming.Stream(_pool(), _run) as stream:
        stream.submit(jobs)
        while stream.in_flight:
            group = stream.next_group(size=STORE_EVERY_ITEMS, seconds=STORE_EVERY_SECONDS)
            if _settle(group, tally, settings):
                on_transcripts()
            room = batch_size - stream.in_flight
            if shutdown.stopping():
                top_up_until = 0.0  # a warm shutdown: finish what is held, take no more
            stragglers = stream.in_flight <= max(1, batch_size * TOP_UP_WHEN_LEFT)
            if room and stragglers and time.monotonic() < top_up_until:
                more = _claim(room, settings)
                tally.claimed += len(more)
                stream.submit(more)
                if len(more) < room:
                    top_up_until = 0.0  # nothing more is due
    return tally.drained()


def _claim(limit: int, settings: Settings) -> list[_Job]:
    """Lease up to `limit` due items, each with its agency's client."""
    with db.session_scope() as session:
        lease = queries.claim_enrichment_items(
            session, limit=limit, lease=timedelta(seconds=settings.lease_seconds)
        )
        if not lease.ids:
            return []
        work = queries.get_work(session, lease.ids)
        needs_key = {item.agency_id for item in work if item.type == EnrichmentType.transcript}
        api_keys = queries.get_api_keys(session, needs_key) if needs_key else {}
    clients = {agency_id: _client(agency_id, key) for agency_id, key in api_keys.items()}
    return [_Job(lease, item, clients.get(item.agency_id)) for item in work]


def _run(job: _Job) -> tuple[queue.Lease, Result]:
    return job.lease, _enrich(job.item, job.client, _analyzer())


def _settle(group: list[tuple[queue.Lease, Result]], tally: _Tally, settings: Settings) -> int:
    """Store one group of results, a lease's at a time, and count them; returns how many
    transcripts it stored."""
    by_lease: dict[int, tuple[queue.Lease, list[Result]]] = {}
    for lease, result in group:
        by_lease.setdefault(id(lease), (lease, []))[1].append(result)
    transcripts = 0
    for lease, results in by_lease.values():
        _hold(lease, [r for r in results if isinstance(r, Held)])
        done = [r for r in results if isinstance(r, Enriched)]
        failed = _store(lease, done, [r for r in results if isinstance(r, Failed)], settings)
        failed_ids = {f.item_id for f in failed}
        stored = Counter(r.type for r in done if r.item_id not in failed_ids)
        tally.stored += stored
        tally.failed += len(failed)
        transcripts += stored[EnrichmentType.transcript]
    return transcripts


# Threads, clients and their kept-alive connections last as long as the worker process, so
# that a batch does not pay for starting threads and opening connections again.
@lru_cache
def _pool() -> ThreadPoolExecutor:
    workers = get_settings().enrichment_concurrency
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enrichment")


@lru_cache(maxsize=256)
def _client(agency_id: uuid.UUID, api_key: str) -> UltravoxClient:
    settings = get_settings()
    return UltravoxClient(
        settings.ultravox_api_base_url,
        api_key,
        connections=settings.enrichment_concurrency,
        timeout=settings.ultravox_timeout_seconds,
        budget=budget(agency_id, api_key),
    )


@lru_cache
def _analyzer() -> Analyzer:
    return build_analyzer(get_settings())


def _enrich(
    item: Row[Any], client: UltravoxClient | None, analyzer: Analyzer
) -> Enriched | Failed | Held:
    try:
        if item.type == EnrichmentType.transcript:
            if client is None:
                return Held(item.id, item.agency_id, agencies.NO_ULTRAVOX_API_KEY)
            messages = client.list_messages(item.ultravox_call_id)
            value: Any = [m.model_dump(mode="json", exclude_none=True) for m in messages]
        else:
            analysis = analyzer.analyze(MESSAGES.validate_python(item.transcript or []))
            value = {**analysis.model_dump(mode="json"), "analyzer": analyzer.name}
    except http.ProviderError as error:
        if error.status == 401:  # the key is wrong or revoked: waiting, not failing
            return Held(item.id, item.agency_id, str(error))
        return Failed(item.id, str(error))
    except Exception as error:
        # A bug or a surprise: record it on the item rather than lose the whole batch.
        log.exception("enrichment item %s failed", item.id)
        return Failed(item.id, f"{type(error).__name__}: {error}")
    return Enriched(item.id, item.call_id, item.type, value)


def _hold(lease: queue.Lease, held: list[Held]) -> None:
    """Give the items back and pause their agencies' transcripts until a key is set."""
    if not held:
        return
    with db.session_scope() as session:
        for item in held:
            reason = f"{pauses.NEEDS_CREDENTIALS}: {item.reason}"
            queue.release(session, queries.ENRICHMENT_QUEUE, lease, [item.item_id], reason)
        for agency_id, reason in {h.agency_id: h.reason for h in held}.items():
            pauses.pause(session, pauses.ULTRAVOX, reason, agency_id=agency_id)


def _store(
    lease: queue.Lease, done: list[Enriched], failed: list[Failed], settings: Settings
) -> list[Failed]:
    """Store the results and record the failures in one transaction; when the database
    refuses a result, store them one by one so that only that item fails. Returns every
    failure, those the database refused included."""

    def batch() -> list[Failed]:
        with db.session_scope() as session:
            queries.complete_enrichment(session, lease, done)
            for failure in failed:
                _mark_failed(session, lease, failure, settings)
        return failed

    def each(_: DBAPIError) -> list[Failed]:
        with db.session_scope() as session:
            refused = drains.one_by_one(
                session, done, lambda result: queries.complete_enrichment(session, lease, [result])
            )
            every = failed + [Failed(result.item_id, reason) for result, reason in refused]
            for failure in every:
                _mark_failed(session, lease, failure, settings)
        return every

    return drains.batch_or_each("enrichment", batch, each)


def _mark_failed(session: Session, lease: queue.Lease, failure: Failed, settings: Settings) -> None:
    retry = queue.mark_failed(
        session,
        queries.ENRICHMENT_QUEUE,
        lease,
        failure.item_id,
        failure.reason,
        base=settings.retry_base_seconds,
        cap=settings.retry_max_seconds,
    )
    log.warning(
        "enrichment item %s failed (%s): %s",
        failure.item_id,
        "retry" if retry else "dead",
        failure.reason,
    )
