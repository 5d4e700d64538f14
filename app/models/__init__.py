"""Every model, re-exported so that Alembic's env.py sees the whole schema."""

from __future__ import annotations

from app.models.agencies import Agency, AgencyMember, Call
from app.models.base import AgencyRole, Base, EnrichmentType, ProcessingStatus, SyncJobStatus
from app.models.queues import EnrichmentItem, WebhookEvent, WebhookLog
from app.models.sync_jobs import CronJobLog, CronSchedule, HistoricalSyncJob

__all__ = [
    "Agency",
    "AgencyMember",
    "AgencyRole",
    "Base",
    "Call",
    "CronJobLog",
    "CronSchedule",
    "EnrichmentItem",
    "EnrichmentType",
    "HistoricalSyncJob",
    "ProcessingStatus",
    "SyncJobStatus",
    "WebhookEvent",
    "WebhookLog",
]
