"""Every model, re-exported so that Alembic's env.py sees the whole schema."""

from __future__ import annotations

from app.models.agencies import Agency, AgencyMember, Call
from app.models.base import AgencyRole, Base, EnrichmentType, ProcessingStatus, SyncJobStatus
from app.models.campaigns import (
    Business,
    CallLog,
    Campaign,
    CampaignDial,
    CampaignLead,
    CampaignLeadStatus,
    CampaignStatus,
    Conversation,
    ConversationEvent,
    DialStatus,
    Lead,
)
from app.models.integrations import Integration, LeadList, LeadListMember, SyncLog
from app.models.pauses import ProviderPause
from app.models.queues import EnrichmentItem, WebhookEvent, WebhookLog
from app.models.sync_jobs import CronJobLog, CronSchedule, HistoricalSyncJob
from app.models.sync_queue import SyncOperation, SyncQueueItem
from app.models.workers import WorkerProcess

__all__ = [
    "Agency",
    "AgencyMember",
    "AgencyRole",
    "Base",
    "Business",
    "Call",
    "CallLog",
    "Campaign",
    "CampaignDial",
    "CampaignLead",
    "CampaignLeadStatus",
    "CampaignStatus",
    "Conversation",
    "ConversationEvent",
    "CronJobLog",
    "CronSchedule",
    "DialStatus",
    "EnrichmentItem",
    "EnrichmentType",
    "HistoricalSyncJob",
    "Integration",
    "Lead",
    "LeadList",
    "LeadListMember",
    "ProcessingStatus",
    "ProviderPause",
    "SyncJobStatus",
    "SyncLog",
    "SyncOperation",
    "SyncQueueItem",
    "WebhookEvent",
    "WebhookLog",
    "WorkerProcess",
]
