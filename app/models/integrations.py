"""Seed 003: CRM integrations, their sync_logs, and the lead lists a sync fills.

An integration's tokens are pgcrypto ciphertext. `sync_state` holds the incremental
watermark per Salesforce object: the SystemModstamp and Id of the last record processed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, UuidPk


class Integration(Base):
    """A business's connection to a CRM; `config.syncEnabled` turns its sync on."""

    __tablename__ = "integrations"
    __table_args__ = (
        UniqueConstraint("business_id", "provider"),
        CheckConstraint(
            "status IN ('active', 'needs_reauth', 'disabled')", name="integrations_status"
        ),
        Index(
            "idx_integrations_sync_enabled",
            "provider",
            postgresql_where=text("(config ->> 'syncEnabled')::boolean AND status = 'active'"),
        ),
    )

    id: Mapped[UuidPk]
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    provider: Mapped[str]
    status: Mapped[str] = mapped_column(server_default=text("'active'"))
    status_reason: Mapped[str | None]
    config: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    instance_url: Mapped[str | None]
    access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The org's own connected app, where it has one; else SALESFORCE_CLIENT_ID and _SECRET.
    oauth_client_id: Mapped[str | None]
    oauth_client_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    sync_state: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    last_sync_at: Mapped[datetime | None]
    # The lease of the run in progress: no two runs of one integration at once.
    sync_started_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]
    sync_worker_id: Mapped[str | None]  # the worker process running it (app.liveness)


class SyncLog(Base):
    """One row per sync run: what it did and how it ended."""

    __tablename__ = "sync_logs"
    __table_args__ = (
        CheckConstraint("status IN ('success', 'partial', 'failed')", name="sync_logs_status"),
        Index("idx_sync_logs_integration", "integration_id", text("started_at DESC")),
    )

    id: Mapped[UuidPk]
    integration_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE")
    )
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    provider: Mapped[str]
    status: Mapped[str]
    records_processed: Mapped[int] = mapped_column(server_default=text("0"))
    records_created: Mapped[int] = mapped_column(server_default=text("0"))
    records_updated: Mapped[int] = mapped_column(server_default=text("0"))
    records_failed: Mapped[int] = mapped_column(server_default=text("0"))
    records_skipped: Mapped[int] = mapped_column(server_default=text("0"))
    skip_reasons: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    duration_ms: Mapped[int | None]
    error_message: Mapped[str | None]
    started_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class LeadList(Base):
    __tablename__ = "lead_lists"
    __table_args__ = (UniqueConstraint("business_id", "name"),)

    id: Mapped[UuidPk]
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    name: Mapped[str]
    source: Mapped[str | None]
    created_at: Mapped[CreatedAt]


class LeadListMember(Base):
    __tablename__ = "lead_list_members"
    __table_args__ = (Index("idx_lead_list_members_lead", "lead_id"),)

    list_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("lead_lists.id", ondelete="CASCADE"), primary_key=True
    )
    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    added_at: Mapped[CreatedAt]
