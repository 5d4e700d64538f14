"""SQL for the enrichment queue: the claim, the work it names, and storing results.

Nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Text, Uuid, bindparam, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app import crypto, pauses, queue
from app.models import Agency, Call, EnrichmentItem, EnrichmentType

# Priority first (lower is sooner), then age, inside each agency, in fair shares across
# agencies: idx_enrichment_queue_agency_pending, then idx_enrichment_queue_pending.
ENRICHMENT_QUEUE = queue.QueueTable(
    EnrichmentItem,
    order_by=[EnrichmentItem.priority, EnrichmentItem.created_at],
    shares_by=EnrichmentItem.agency_id.expression,
)

# Storing a transcript sets transcript_fetched_at, which queues the call's analysis
# (transcript_fetched_queue_analysis).
_STORE = {
    EnrichmentType.transcript: "transcript = v.value, transcript_fetched_at = now()",
    EnrichmentType.analysis: "analysis = v.value, analyzed_at = now()",
}
STORE = {
    kind: text(
        f"""UPDATE calls SET {columns}, updated_at = now()
        FROM unnest(:call_ids, CAST(:values AS jsonb[])) AS v(id, value)
        WHERE calls.id = v.id"""  # noqa: S608 (the columns are the constants above)
    ).bindparams(bindparam("call_ids", type_=ARRAY(Uuid)), bindparam("values", type_=ARRAY(Text)))
    for kind, columns in _STORE.items()
}


@dataclass(frozen=True)
class Enriched:
    """A finished item: the transcript (a list of messages) or the analysis of its call."""

    item_id: uuid.UUID
    call_id: uuid.UUID
    type: EnrichmentType
    value: Any


def claim_enrichment_items(session: Session, *, limit: int, lease: timedelta) -> queue.Lease:
    """Lease up to `limit` due items: runs whose lease expired (the lost run counts as an
    attempt; at the last one the item is dead instead), then retries that came due (by
    next_retry_at), then pending items in fair shares across agencies, each agency's by
    (priority, created_at), skipping items another transaction has locked, and the
    transcripts of an agency whose Ultravox key is wanted (app.pauses). The Lease (the ids
    and their processing_started_at) makes them ours: completing or failing an item checks it
    (queue.claim)."""
    return queue.claim(session, ENRICHMENT_QUEUE, limit=limit, lease=lease, where=NOT_PAUSED)


# One object for every claim, so the claim's statement is built once (app.shares).
NOT_PAUSED = or_(
    EnrichmentItem.type != EnrichmentType.transcript,
    pauses.not_paused(pauses.ULTRAVOX, EnrichmentItem.agency_id),
)


def get_work(session: Session, ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
    """For each item: its id and type, and its call's id, agency, Ultravox id and transcript."""
    stmt = (
        select(
            EnrichmentItem.id,
            EnrichmentItem.type,
            Call.id.label("call_id"),
            Call.agency_id,
            Call.ultravox_call_id,
            Call.transcript,
        )
        .join(Call, Call.id == EnrichmentItem.call_id)
        .where(EnrichmentItem.id.in_(ids))
    )
    return list(session.execute(stmt))


def get_api_keys(session: Session, agency_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The agencies' Ultravox keys, decrypted; an agency without one is left out."""
    key = crypto.decrypted(Agency.ultravox_api_key_encrypted)
    rows = session.execute(select(Agency.id, key).where(Agency.id.in_(list(agency_ids))))
    return {agency_id: api_key for agency_id, api_key in rows if api_key}


def complete_enrichment(session: Session, lease: queue.Lease, results: Sequence[Enriched]) -> int:
    """Complete the items that are still ours and store their results on their calls, in the
    caller's transaction; returns how many were stored. Completing first locks the items, so
    a claim that took over an expired lease cannot run them meanwhile."""
    ours = set(queue.mark_completed(session, ENRICHMENT_QUEUE, lease, [r.item_id for r in results]))
    for kind, stmt in STORE.items():
        stored = [r for r in results if r.type == kind and r.item_id in ours]
        if stored:
            values = [json.dumps(r.value) for r in stored]
            session.execute(stmt, {"call_ids": [r.call_id for r in stored], "values": values})
    return len(ours)


def count_due(session: Session, *, lease: timedelta) -> int:
    """Items a drain could claim now: pending, retries that came due, lost runs."""
    return queue.count_due(session, ENRICHMENT_QUEUE, lease=lease)


def replay_dead(
    session: Session, *, call_id: uuid.UUID | None = None, item_ids: Sequence[uuid.UUID] = ()
) -> Counter[str]:
    """Queue dead items again: all of them, one call's, or the given ones."""
    where: ColumnElement[bool] | None = None
    if call_id is not None:
        where = EnrichmentItem.call_id == call_id
    if item_ids:
        where = EnrichmentItem.id.in_(item_ids)
    return queue.replay(session, ENRICHMENT_QUEUE, where)
