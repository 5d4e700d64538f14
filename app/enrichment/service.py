"""process-enrichment-queue's work: fetch transcripts and analyse them, a batch at a time.

The work waits on the network, so a batch runs up to ENRICHMENT_CONCURRENCY items at once on
threads; nothing is open in the database meanwhile. Results are stored as they finish, in
groups of up to STORE_EVERY_ITEMS or STORE_EVERY_SECONDS after a group's first result, one
transaction per group: an item that waits for budget, for a retry or for its timeout holds
back no other item's result. An item that failed is retried later with backoff (attempts + 1,
next_retry_at), and is dead after max_attempts until replayed.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import agencies, db, drains, http, pauses, queue, streaming
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


def drain_batch(
    *,
    batch_size: int,
    on_full_batch: Callable[[], object],
    on_transcripts: Callable[[], object] = lambda: None,
) -> Drained:
    """Claim up to `batch_size` due items, run them, store what they found as they finish.

    A full batch suggests more are waiting: `on_full_batch` runs before the work, so that
    another worker can start on the next batch meanwhile. `on_transcripts` runs after each
    group that stored transcripts (their analyses are queued), while the batch goes on.
    """
    settings = get_settings()
    with db.session_scope() as session:
        lease = queries.claim_enrichment_items(
            session, limit=batch_size, lease=timedelta(seconds=settings.lease_seconds)
        )
        if not lease.ids:
            return Drained(0, _kinds(Counter()), 0)
        work = queries.get_work(session, lease.ids)
        needs_key = {item.agency_id for item in work if item.type == EnrichmentType.transcript}
        api_keys = queries.get_api_keys(session, needs_key) if needs_key else {}
    if len(lease.ids) == batch_size:
        on_full_batch()
    stored: Counter[EnrichmentType] = Counter()
    failed = 0
    for group in run(work, api_keys):
        kinds, failures = _settle(lease, group, settings)
        stored += kinds
        failed += failures
        if kinds[EnrichmentType.transcript]:
            on_transcripts()
    return Drained(len(lease.ids), _kinds(stored), failed)


def _kinds(stored: Counter[EnrichmentType]) -> dict[str, int]:
    return {
        "transcripts": stored[EnrichmentType.transcript],
        "analyses": stored[EnrichmentType.analysis],
    }


def run(
    work: Sequence[Row[Any]], api_keys: dict[uuid.UUID, str]
) -> Iterator[list[Enriched | Failed | Held]]:
    """Each item's result, up to ENRICHMENT_CONCURRENCY at a time, in groups as they finish."""
    clients = {agency_id: _client(agency_id, key) for agency_id, key in api_keys.items()}
    analyzer = _analyzer()

    def enrich(item: Row[Any]) -> Enriched | Failed | Held:
        return _enrich(item, clients.get(item.agency_id), analyzer)

    return streaming.in_groups(
        _pool(), enrich, work, size=STORE_EVERY_ITEMS, seconds=STORE_EVERY_SECONDS
    )


def _settle(
    lease: queue.Lease, group: list[Enriched | Failed | Held], settings: Settings
) -> tuple[Counter[EnrichmentType], int]:
    """Store one group of results: what it stored, by kind, and how many failed."""
    _hold(lease, [r for r in group if isinstance(r, Held)])
    done = [r for r in group if isinstance(r, Enriched)]
    failed = _store(lease, done, [r for r in group if isinstance(r, Failed)], settings)
    failed_ids = {f.item_id for f in failed}
    return Counter(r.type for r in done if r.item_id not in failed_ids), len(failed)


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
