"""conversation-orchestrator's work: bring a conversation's turns and outcome in from ElevenLabs.

New turns become conversation_events, inserted once per (conversation, index) in batches.
The outcome is inferred from what the caller said, with the seed's phrases; the sentiment
follows from the outcome. When ElevenLabs is unavailable nothing changes: the conversation is
synced on a later run (the seed's demo-mode fallback).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import db, http
from app.campaigns.client import default_client
from app.campaigns.schemas import ConversationDetails, Turn
from app.config import get_settings
from app.models import CampaignLead, CampaignLeadStatus, Conversation, ConversationEvent
from app.outcomes import key_points, matched_outcome

log = logging.getLogger("conversations")

# Seed 003: the outcomes inferred from the caller's words, and the sentiment each implies.
SENTIMENT = {"donated": 1.0, "pledged": 0.8, "not_interested": -0.6}
FINAL_STATUSES = ("done", "failed")
# GetConversationResponseModel.metadata fields copied into conversations.metadata.
METADATA_FIELDS = {
    "start_time_unix_secs",
    "accepted_time_unix_secs",
    "call_duration_secs",
    "termination_reason",
    "main_language",
    "cost",
    "error",
}


def conversations_to_sync(session: Session, now: datetime) -> list[uuid.UUID]:
    """Unfinished conversations updated within the lookback, least recently synced first."""
    settings = get_settings()
    since = now - timedelta(hours=settings.conversation_sync_lookback_hours)
    stmt = (
        select(Conversation.id)
        .where(Conversation.updated_at >= since, Conversation.status.not_in(FINAL_STATUSES))
        .order_by(Conversation.last_synced_at.asc().nulls_first(), Conversation.updated_at)
        .limit(settings.conversation_sync_batch_limit)
    )
    return list(session.scalars(stmt))


def sync_conversation(conversation_id: uuid.UUID) -> dict[str, Any]:
    """Fetch the conversation, store its new turns and its outcome."""
    with db.session_scope() as session:
        row = session.get(Conversation, conversation_id)
        if row is None:
            return {"id": str(conversation_id), "skipped": "no such conversation"}
        external_id = row.conversation_id
    try:
        details = default_client().get_conversation(external_id)
    except http.ProviderError as error:
        log.warning("[getConversationHistory] unavailable for %s, trying next run: %s",
                    external_id, error)  # fmt: skip
        return {"id": str(conversation_id), "status": "unavailable", "error": str(error)}
    log.info("[getConversationHistory] API returned 200 for %s (%s)", external_id, details.status)
    with db.session_scope() as session:
        added = _store(session, conversation_id, details)
    log.info("[conversations] update ok id=%s status=%s events=%d", external_id, details.status,
             added)  # fmt: skip
    return {"id": str(conversation_id), "status": details.status, "events_added": added}


def _store(session: Session, conversation_id: uuid.UUID, details: ConversationDetails) -> int:
    row = session.get_one(Conversation, conversation_id, with_for_update=True)
    known = session.scalar(
        select(func.count()).where(ConversationEvent.conversation_id == conversation_id)
    )
    added = _insert_events(session, conversation_id, details.transcript, start=known or 0)
    said = [t.message.strip() for t in details.transcript if t.role == "user" and t.message]
    outcome = infer_outcome(said)
    row.status = details.status
    row.outcome = outcome
    row.sentiment_score = SENTIMENT.get(outcome or "", 0.0)
    row.key_points = key_points([line for line in said if line])
    if details.analysis:
        row.summary = details.analysis.transcript_summary or row.summary
    phone_call = details.metadata.phone_call
    row.call_sid = row.call_sid or (phone_call.call_sid if phone_call else None)
    row.metadata_ = row.metadata_ | history_metadata(details)
    row.last_synced_at = datetime.now(UTC)
    row.updated_at = func.now()
    if details.status == "done" and row.campaign_id and row.lead_id:
        # The conversation happened: this lead is done with for the campaign.
        session.execute(
            update(CampaignLead)
            .where(CampaignLead.campaign_id == row.campaign_id,
                   CampaignLead.lead_id == row.lead_id,
                   CampaignLead.status == CampaignLeadStatus.contacted)
            .values(status=CampaignLeadStatus.completed, updated_at=func.now())
        )  # fmt: skip
    return added


def history_metadata(details: ConversationDetails) -> dict[str, Any]:
    """What the conversation's history says about the call, for conversations.metadata: the
    status, the call's times, cost and end, and once analysed, its success, title, data
    collection values and evaluation results. Fields ElevenLabs leaves out are left out."""
    meta, analysis = details.metadata, details.analysis
    found: dict[str, Any] = {
        "status": details.status,
        **meta.model_dump(include=METADATA_FIELDS, exclude_none=True),
    }
    if analysis:
        summary = {"call_successful", "call_summary_title"}
        found |= analysis.model_dump(include=summary, exclude_none=True)
        found["data_collection"] = {
            key: result.value for key, result in analysis.data_collection_results.items()
        }
        found["evaluation_criteria"] = {
            key: result.result for key, result in analysis.evaluation_criteria_results.items()
        }
    return found


def _insert_events(
    session: Session, conversation_id: uuid.UUID, turns: list[Turn], *, start: int
) -> int:
    """Insert turns from index `start` on, in batches; a turn already stored is left alone."""
    batch = get_settings().conversation_sync_events_batch_size
    rows = [
        {"conversation_id": conversation_id, "event_index": index, "role": turn.role,
         "message": turn.message, "time_in_call_secs": turn.time_in_call_secs}
        for index, turn in enumerate(turns) if index >= start
    ]  # fmt: skip
    added = 0
    for first in range(0, len(rows), batch):
        stmt = (
            insert(ConversationEvent)
            .values(rows[first : first + batch])
            .on_conflict_do_nothing(index_elements=["conversation_id", "event_index"])
        )
        added += session.execute(stmt).rowcount  # type: ignore[attr-defined]
    return added


def infer_outcome(said: list[str]) -> str | None:
    """pledged, donated or not_interested from the seed's phrases, case-insensitively; "I
    don't want to donate" is not interested."""
    outcome = matched_outcome(said)
    return outcome if outcome in SENTIMENT else None
