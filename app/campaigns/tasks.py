"""Celery entry points for outbound campaigns (seed: campaign-orchestrator).

Beat's tick sends one task per active campaign. A task that runs twice for one campaign (a
redelivered message, two beats) reserves different leads or none: the reservation is atomic.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from app import db
from app.campaigns import queries, service
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


@app.task(
    name="campaigns.run_campaign",
    queue=Queue.CAMPAIGNS,
    autoretry_for=(OperationalError,),  # database blips only; a dial is never repeated
    retry_backoff=True,
    max_retries=3,
)
def run_campaign(campaign_id: str) -> dict[str, Any]:
    """Reserve and place the campaign's next calls."""
    return service.run_campaign(uuid.UUID(campaign_id), datetime.now(UTC))
