"""Seed 003: businesses, their leads, outbound campaigns and the conversations they start.

A dial is reserved before it is placed: campaign_leads.attempts moves under an optimistic
lock and a campaign_dials row is written in the same transaction, unique per (campaign lead,
attempt), so no attempt can ever be dialled twice.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, UuidPk, pg_enum


class CampaignStatus(enum.StrEnum):
    draft = "draft"
    active = "active"
    paused = "paused"
    completed = "completed"


class CampaignLeadStatus(enum.StrEnum):
    pending = "pending"  # never dialled
    dialing = "dialing"  # an attempt is reserved; its call is being placed
    contacted = "contacted"  # the call was placed
    failed = "failed"  # the last attempt failed; a later one may follow
    completed = "completed"  # terminal: the conversation is done
    invalid_number = "invalid_number"  # terminal: no E.164 phone number


class DialStatus(enum.StrEnum):
    reserved = "reserved"
    placed = "placed"
    failed = "failed"
    unknown = "unknown"  # the worker stopped between reserving and recording: never redialled


TERMINAL_LEAD_STATUSES = (CampaignLeadStatus.completed, CampaignLeadStatus.invalid_number)


class Business(Base):
    """A customer of the campaign product; leads and campaigns belong to one."""

    __tablename__ = "businesses"

    id: Mapped[UuidPk]
    name: Mapped[str]
    created_at: Mapped[CreatedAt]


class Lead(Base):
    """A person to call, from one source (Salesforce contact or lead, an import, ...)."""

    __tablename__ = "leads"
    __table_args__ = (
        # Also the index for a business's leads: business_id leads it.
        UniqueConstraint("business_id", "source", "source_id"),
        CheckConstraint(
            "timezone IS NULL OR is_valid_timezone(timezone)", name="leads_timezone_valid"
        ),
    )

    id: Mapped[UuidPk]
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    source: Mapped[str]
    source_id: Mapped[str]
    first_name: Mapped[str | None]
    last_name: Mapped[str | None]
    email: Mapped[str | None]
    phone: Mapped[str | None]
    company: Mapped[str | None]
    timezone: Mapped[str | None]
    do_not_call: Mapped[bool] = mapped_column(server_default=text("false"))
    quality_rating: Mapped[int | None]
    lead_score: Mapped[int | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class Campaign(Base):
    """An outbound calling campaign: an ElevenLabs agent dialling a business's leads."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR start_date <= end_date",
            name="campaigns_date_range",
        ),
        CheckConstraint("call_window_start < call_window_end", name="campaigns_call_window"),
        CheckConstraint("daily_call_cap >= 0", name="campaigns_daily_call_cap"),
        CheckConstraint("max_attempts >= 1", name="campaigns_max_attempts"),
        CheckConstraint("is_valid_timezone(timezone)", name="campaigns_timezone_valid"),
        Index("idx_campaigns_business", "business_id"),
        Index("idx_campaigns_active", "status", postgresql_where=text("status = 'active'")),
    )

    id: Mapped[UuidPk]
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    name: Mapped[str]
    status: Mapped[CampaignStatus] = mapped_column(
        pg_enum(CampaignStatus, "campaign_status"), server_default=text("'draft'")
    )
    agent_id: Mapped[str]
    agent_phone_number_id: Mapped[str]
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    timezone: Mapped[str] = mapped_column(server_default=text("'America/New_York'"))
    call_window_start: Mapped[time] = mapped_column(server_default=text("'09:00'"))
    call_window_end: Mapped[time] = mapped_column(server_default=text("'17:00'"))
    daily_call_cap: Mapped[int] = mapped_column(server_default=text("100"))
    max_attempts: Mapped[int] = mapped_column(server_default=text("3"))
    retry_interval_minutes: Mapped[int] = mapped_column(server_default=text("1440"))
    exclude_dnc: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class CampaignLead(Base):
    """A lead's place in a campaign: its attempts (the optimistic lock) and where it stands."""

    __tablename__ = "campaign_leads"
    __table_args__ = (
        UniqueConstraint("campaign_id", "lead_id"),
        CheckConstraint("attempts >= 0", name="campaign_leads_attempts"),
        Index("idx_campaign_leads_campaign_status", "campaign_id", "status"),
        Index("idx_campaign_leads_lead", "lead_id"),
    )

    id: Mapped[UuidPk]
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    status: Mapped[CampaignLeadStatus] = mapped_column(
        pg_enum(CampaignLeadStatus, "campaign_lead_status"), server_default=text("'pending'")
    )
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None]
    conversation_id: Mapped[str | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class CampaignDial(Base):
    """One reserved attempt to call a lead; (campaign_lead_id, attempt) is dialled at most once."""

    __tablename__ = "campaign_dials"
    __table_args__ = (
        UniqueConstraint("campaign_lead_id", "attempt"),
        Index("idx_campaign_dials_campaign_reserved", "campaign_id", "reserved_at"),
        Index(
            "idx_campaign_dials_reserved",
            "reserved_at",
            postgresql_where=text("status = 'reserved'"),
        ),
    )

    id: Mapped[UuidPk]
    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    campaign_lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaign_leads.id", ondelete="CASCADE")
    )
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    attempt: Mapped[int]
    to_number: Mapped[str]
    status: Mapped[DialStatus] = mapped_column(
        pg_enum(DialStatus, "dial_status"), server_default=text("'reserved'")
    )
    error: Mapped[str | None]
    conversation_id: Mapped[str | None]
    call_sid: Mapped[str | None]
    reserved_at: Mapped[CreatedAt]
    finished_at: Mapped[datetime | None]
    worker_id: Mapped[str | None]  # the worker process placing the call (app.liveness)


class Conversation(Base):
    """An ElevenLabs conversation started by a dial, synced by conversation-orchestrator."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("conversation_id"),
        Index("idx_conversations_updated", "updated_at"),
        Index("idx_conversations_campaign", "campaign_id"),
    )

    id: Mapped[UuidPk]
    conversation_id: Mapped[str]
    call_sid: Mapped[str | None]
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(server_default=text("'initiated'"))
    outcome: Mapped[str | None]
    sentiment_score: Mapped[float | None]
    key_points: Mapped[list[Any]] = mapped_column(server_default=text("'[]'::jsonb"))
    summary: Mapped[str | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=text("'{}'::jsonb")
    )
    last_synced_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class ConversationEvent(Base):
    """One turn of a conversation's transcript; (conversation, index) is inserted once."""

    __tablename__ = "conversation_events"
    __table_args__ = (UniqueConstraint("conversation_id", "event_index"),)

    id: Mapped[UuidPk]
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    event_index: Mapped[int]
    role: Mapped[str]
    message: Mapped[str | None]
    time_in_call_secs: Mapped[int | None]
    created_at: Mapped[CreatedAt]


class CallLog(Base):
    """One finished dial attempt: placed, failed or unknown, with its error. A placed call whose
    conversation row could not be written is on record here (the seed's fallback), its error
    saying why."""

    __tablename__ = "call_logs"
    __table_args__ = (
        UniqueConstraint("dial_id"),
        Index("idx_call_logs_campaign", "campaign_id", "created_at"),
    )

    id: Mapped[UuidPk]
    dial_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaign_dials.id", ondelete="SET NULL")
    )
    attempt: Mapped[int | None]
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    to_number: Mapped[str | None]
    conversation_id: Mapped[str | None]
    call_sid: Mapped[str | None]
    status: Mapped[str]
    error: Mapped[str | None]
    created_at: Mapped[CreatedAt]
