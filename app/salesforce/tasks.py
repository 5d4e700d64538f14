"""Celery entry points for the Salesforce lead sync (seed: sync-salesforce-leads)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import OperationalError

from app import db
from app.celery import Queue, app, periodic_task
from app.salesforce import queries, service

log = logging.getLogger("salesforce")


@periodic_task("sync-salesforce-leads")
def sync_salesforce_leads() -> dict[str, Any]:
    """Send one sync task per enabled Salesforce integration."""
    log.info("[sync-salesforce-leads] tick at %s", datetime.now(UTC).isoformat())
    with db.session_scope() as session:
        ids = queries.get_enabled_integrations(session)
    log.info("[sync-salesforce-leads] found %d active integration(s)", len(ids))
    for integration_id in ids:
        sync_integration.delay(str(integration_id))
    return {"integrations": len(ids)}


@app.task(
    name="salesforce.sync_integration",
    queue=Queue.SYNC,
    autoretry_for=(OperationalError,),  # database blips only; the run's lease guards reruns
    retry_backoff=True,
    max_retries=3,
)
def sync_integration(integration_id: str) -> dict[str, Any]:
    """One incremental run of an integration's Contacts and Leads."""
    return service.sync_integration(uuid.UUID(integration_id))
