"""Celery entry points for outbound campaigns (seed: campaign-orchestrator,
conversation-orchestrator).

Beat's tick sends one task per active campaign. Runs of one campaign at once (a redelivered
message, two beats, a manual run) take the campaign's lock in turn, so together they reserve
no more than its daily cap, and never the same lead twice.

Campaigns take turns: a run dials at most a round (DIAL_ROUND) and, when that was a full round
with quota left, asks for the campaign's next run, which joins the back of the queue behind the
other campaigns' runs. So a campaign with thousands of leads due holds a worker for a round at a
time, not for its whole day, and every business's campaigns keep dialling. At most one run of a
campaign waits in the queue: beat's tick and a run's follow-up ask through the same mark.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from app import db
from app.broker import get_redis
from app.campaigns import conversations, queries, service
from app.celery import Queue, app, periodic_task
from app.config import get_settings

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
        request_run(str(campaign.id))
    return {"campaigns": len(campaigns)}


def request_run(campaign_id: str) -> None:
    """Send a run of the campaign unless one asked for before is still waiting to start. The
    mark expires after DIAL_LEASE_SECONDS, so a run lost with its message is replaced."""
    ttl_ms = get_settings().dial_lease_seconds * 1000
    if get_redis().set(_run_requested(campaign_id), 1, nx=True, px=ttl_ms):
        run_campaign.delay(campaign_id)


def _run_requested(campaign_id: str) -> str:
    return f"callsync:campaigns:{campaign_id}:run-requested"


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
    """Reserve and place a round of the campaign's next calls; ask for the next round, at the
    back of the queue, when this one was full."""
    get_redis().delete(_run_requested(campaign_id))  # this run is the one it stood for
    result = service.run_campaign(uuid.UUID(campaign_id), datetime.now(UTC))
    if result.full_round:
        request_run(campaign_id)
    return result.as_dict()
