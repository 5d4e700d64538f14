"""Celery entry points for outbound campaigns (seed: campaign-orchestrator,
conversation-orchestrator).

Beat's tick sends one task per active campaign. Runs of one campaign at once (a redelivered
message, two beats, a manual run) take the campaign's lock in turn, so together they reserve
no more than its daily cap, and never the same lead twice.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from app import db
from app.campaigns import conversations, queries, service
from app.celery import Queue, app, periodic_task

log = logging.getLogger("campaigns")


@periodic_task("campaign-orchestrator")
def campaign_orchestrator() -> dict[str, Any]:
    """Send one run_campaign task per active campaign within its dates."""
    now = datetime.now(UTC)
    log.info("[orchestrator] tick at %s", now.isoformat())
    with db.session_scope() as session:
        campaigns = queries.get_active_campaigns(session, now)
    log.info("[orchestrator] fetched %d active campaign(s)", len(campaigns))
    for campaign in campaigns:
        run_campaign.delay(str(campaign.id))
    return {"campaigns": len(campaigns)}


@periodic_task("conversation-orchestrator")
def conversation_orchestrator() -> dict[str, Any]:
    """Send one sync task per unfinished conversation updated within the lookback."""
    now = datetime.now(UTC)
    log.info("[conversation-orchestrator] tick at %s", now.isoformat())
    with db.session_scope() as session:
        ids = conversations.conversations_to_sync(session, now)
    log.info("[conversation-orchestrator] syncing %d conversation(s)", len(ids))
    for conversation_id in ids:
        sync_conversation.delay(str(conversation_id))
    return {"conversations": len(ids)}


@app.task(
    name="campaigns.sync_conversation",
    queue=Queue.CAMPAIGNS,
    autoretry_for=(OperationalError,),  # the seed retries its update 3 times: 1 s, 2 s, 4 s
    retry_backoff=1,
    max_retries=3,
)
def sync_conversation(conversation_id: str) -> dict[str, Any]:
    """Bring one conversation's new turns and outcome in from ElevenLabs."""
    return conversations.sync_conversation(uuid.UUID(conversation_id)).as_dict()


@app.task(
    name="campaigns.run_campaign",
    queue=Queue.CAMPAIGNS,
    autoretry_for=(OperationalError,),  # database blips only; a dial is never repeated
    retry_backoff=True,
    max_retries=3,
)
def run_campaign(campaign_id: str) -> dict[str, Any]:
    """Reserve and place the campaign's next calls."""
    return service.run_campaign(uuid.UUID(campaign_id), datetime.now(UTC)).as_dict()
