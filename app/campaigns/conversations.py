"""conversation-orchestrator's work: bring a conversation's turns and outcome in from ElevenLabs.

New turns become conversation_events, inserted once per (conversation, index) in batches.
The outcome is inferred from what the caller said, with the seed's phrases; the sentiment
follows from the outcome. When ElevenLabs is unavailable nothing changes: the conversation is
synced on a later run (the seed's demo-mode fallback).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app import db, http
from app.campaigns import queries
from app.campaigns.client import default_client
from app.campaigns.schemas import ConversationDetails
from app.config import get_settings
from app.outcomes import key_points, matched_outcome

log = logging.getLogger("conversations")

# Seed 003: the outcomes inferred from the caller's words, and the sentiment each implies.
SENTIMENT = {"donated": 1.0, "pledged": 0.8, "not_interested": -0.6}
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


@dataclass(frozen=True)
class Synced:
    """What one sync of a conversation did: its status and the turns it added, or why not."""

    id: uuid.UUID
    status: str | None = None  # ElevenLabs' status, or "unavailable"
    error: str | None = None  # why ElevenLabs was unavailable
    events_added: int | None = None
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The task's result: the fields that are set."""
        found = {
            "skipped": self.skipped,
            "status": self.status,
            "error": self.error,
            "events_added": self.events_added,
        }
        return {"id": str(self.id)} | {
            key: value for key, value in found.items() if value is not None
        }


def conversations_to_sync(session: Session, now: datetime) -> list[uuid.UUID]:
    """Unfinished conversations updated within the lookback, least recently synced first."""
    settings = get_settings()
    since = now - timedelta(hours=settings.conversation_sync_lookback_hours)
    return queries.get_conversations_to_sync(
        session, since=since, limit=settings.conversation_sync_batch_limit
    )


def sync_conversation(conversation_id: uuid.UUID) -> Synced:
    """Fetch the conversation, store its new turns and its outcome."""
    with db.session_scope() as session:
        external_id = queries.get_external_id(session, conversation_id)
    if external_id is None:
        return Synced(conversation_id, skipped="no such conversation")
    try:
        details = default_client().get_conversation(external_id)
    except http.ProviderError as error:
        log.warning(
            "[getConversationHistory] unavailable for %s, trying next run: %s", external_id, error
        )
        return Synced(conversation_id, status="unavailable", error=str(error))
    log.info("[getConversationHistory] API returned 200 for %s (%s)", external_id, details.status)
    with db.session_scope() as session:
        added = _store(session, conversation_id, details)
    log.info(
        "[conversations] update ok id=%s status=%s events=%d", external_id, details.status, added
    )
    return Synced(conversation_id, status=details.status, events_added=added)


def _store(session: Session, conversation_id: uuid.UUID, details: ConversationDetails) -> int:
    stored = queries.lock_conversation(session, conversation_id)
    added = queries.insert_events(
        session,
        conversation_id,
        details.transcript,
        start=stored.events,
        batch=get_settings().conversation_sync_events_batch_size,
    )
    said = [t.message.strip() for t in details.transcript if t.role == "user" and t.message]
    outcome = infer_outcome(said)
    phone_call = details.metadata.phone_call
    sync = queries.ConversationSync(
        status=details.status,
        outcome=outcome,
        sentiment_score=SENTIMENT.get(outcome or "", 0.0),
        key_points=key_points([line for line in said if line]),
        summary=details.analysis.transcript_summary if details.analysis else None,
        call_sid=phone_call.call_sid if phone_call else None,
        metadata=history_metadata(details),
    )
    queries.record_sync(session, conversation_id, sync)
    if details.status == "done" and stored.campaign_id and stored.lead_id:
        # The conversation happened: this lead is done with for the campaign.
        queries.complete_campaign_lead(session, stored.campaign_id, stored.lead_id)
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


def infer_outcome(said: list[str]) -> str | None:
    """pledged, donated or not_interested from the seed's phrases, case-insensitively; "I
    don't want to donate" is not interested."""
    outcome = matched_outcome(said)
    return outcome if outcome in SENTIMENT else None
