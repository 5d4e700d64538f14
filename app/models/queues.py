"""Seed 002: webhook_queue, webhook_logs and enrichment_queue, column for column (and
enrichment_queue.agency_id, for fair shares)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import INET
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import (
    SUSPECT,
    Base,
    CreatedAt,
    EnrichmentType,
    ProcessingStatus,
    UuidPk,
    pg_enum,
)

PROCESSING_STATUS = pg_enum(ProcessingStatus, "processing_status")


class WebhookEvent(Base):
    """An accepted Ultravox webhook waiting for process-webhook-queue."""

    __tablename__ = "webhook_queue"
    __table_args__ = (
        CheckConstraint("attempts <= max_attempts", name="webhook_queue_max_attempts"),
        Index(
            "idx_webhook_queue_pending", "created_at", postgresql_where=text("status = 'pending'")
        ),
        Index(
            "idx_webhook_queue_retry",
            "next_retry_at",
            postgresql_where=text("status = 'failed' AND attempts < max_attempts"),
        ),
        Index(
            "idx_webhook_queue_suspect",
            "created_at",
            postgresql_where=text(SUSPECT.format(attempts="attempts", max_attempts="max_attempts")),
        ),
        Index("idx_webhook_queue_agency", "agency_id"),
        # Each agency's pending events in order, for the claim's fair shares (app.shares;
        # the agency's bytes rather than the column: app.webhooks.queries).
        Index(
            "idx_webhook_queue_agency_pending",
            text("uuid_send(agency_id)"),
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("idx_webhook_queue_status", "status"),
        Index(
            "idx_webhook_queue_processed",
            "processed_at",
            postgresql_where=text("status = 'completed'"),
        ),
        # Ultravox has no event id: a delivery is known by its agency, event and call.
        Index(
            "uq_webhook_queue_event",
            "agency_id",
            "event_type",
            text("(payload #>> '{call,callId}')"),
            unique=True,
        ),
    )

    id: Mapped[UuidPk]
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]]
    status: Mapped[ProcessingStatus] = mapped_column(
        PROCESSING_STATUS, server_default=text("'pending'")
    )
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(server_default=text("5"))
    error_message: Mapped[str | None]
    created_at: Mapped[CreatedAt]
    processing_started_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    next_retry_at: Mapped[datetime | None]
    lost_runs: Mapped[int] = mapped_column(server_default=text("0"))


class WebhookLog(Base):
    """One row per webhook request, accepted or not.

    The seed lists no foreign key on queue_item_id, so pruning completed queue rows never
    touches the audit trail.
    """

    __tablename__ = "webhook_logs"
    __table_args__ = (
        Index("idx_webhook_logs_agency", "agency_id", text("received_at DESC")),
        Index("idx_webhook_logs_received", text("received_at DESC")),
        Index(
            "idx_webhook_logs_failed",
            text("received_at DESC"),
            postgresql_where=text("validation_success = false"),
        ),
    )

    id: Mapped[UuidPk]
    agency_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE")
    )
    request_method: Mapped[str] = mapped_column(String(10), server_default=text("'POST'"))
    request_path: Mapped[str]
    request_headers: Mapped[dict[str, Any] | None]
    request_body: Mapped[dict[str, Any] | None]
    validation_success: Mapped[bool]
    validation_error: Mapped[str | None]
    queue_item_id: Mapped[uuid.UUID | None]
    received_at: Mapped[CreatedAt]
    source_ip: Mapped[str | None] = mapped_column(INET)


class EnrichmentItem(Base):
    """A transcript fetch or an analysis of one call, queued by the calls triggers."""

    __tablename__ = "enrichment_queue"
    __table_args__ = (
        UniqueConstraint("call_id", "type", "status", name="enrichment_queue_unique_pending"),
        CheckConstraint("attempts <= max_attempts", name="enrichment_queue_max_attempts"),
        Index(
            "idx_enrichment_queue_pending",
            "priority",
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "idx_enrichment_queue_retry",
            "next_retry_at",
            postgresql_where=text("status = 'failed' AND attempts < max_attempts"),
        ),
        Index(
            "idx_enrichment_queue_suspect",
            "created_at",
            postgresql_where=text(SUSPECT.format(attempts="attempts", max_attempts="max_attempts")),
        ),
        Index(
            "idx_enrichment_queue_agency_pending",
            "agency_id",
            "priority",
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("idx_enrichment_queue_call", "call_id"),
        Index("idx_enrichment_queue_type", "type"),
        Index("idx_enrichment_queue_status", "status"),
        Index(
            "idx_enrichment_queue_processed",
            "processed_at",
            postgresql_where=text("status = 'completed'"),
        ),
    )

    id: Mapped[UuidPk]
    call_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    type: Mapped[EnrichmentType] = mapped_column(pg_enum(EnrichmentType, "enrichment_type"))
    status: Mapped[ProcessingStatus] = mapped_column(
        PROCESSING_STATUS, server_default=text("'pending'")
    )
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(server_default=text("3"))
    error_message: Mapped[str | None]
    priority: Mapped[int] = mapped_column(server_default=text("100"))
    created_at: Mapped[CreatedAt]
    processing_started_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    next_retry_at: Mapped[datetime | None]
    worker_id: Mapped[str | None]  # the worker process holding the claim (app.liveness)
    lost_runs: Mapped[int] = mapped_column(server_default=text("0"))
    # callsync's own, not the seed's: the call's agency, copied by the triggers that queue the
    # item, so that claims can share the work between agencies (alembic 0017). No foreign key:
    # the call's cascades the item away.
    agency_id: Mapped[uuid.UUID]
