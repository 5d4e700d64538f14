"""Seed 004: sync_queue, the changes waiting to be pushed to the Bubble.io back end."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import SUSPECT, Base, CreatedAt, ProcessingStatus, UuidPk, pg_enum


class SyncOperation(enum.StrEnum):
    SIGNUP_ATOMIC = "SIGNUP_ATOMIC"  # a user and its dependent records, all or nothing
    INSERT = "INSERT"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class SyncQueueItem(Base):
    """One change to push to Bubble; the processor claims pending ones, the retry job failed ones."""

    __tablename__ = "sync_queue"
    __table_args__ = (
        CheckConstraint("retry_count >= 0 AND max_retries >= 0", name="sync_queue_retries"),
        Index(
            "idx_sync_queue_pending",
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "idx_sync_queue_retry",
            "next_retry_at",
            postgresql_where=text("status = 'failed' AND retry_count < max_retries"),
        ),
        # Each table's pending items in order, for the claim's fair shares (app.shares;
        # lower(table_name) rather than the column: app.bubble.queries).
        Index(
            "idx_sync_queue_table_pending",
            text("lower(table_name)"),
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("idx_sync_queue_record", "table_name", "record_id", "seq"),
        Index(
            "idx_sync_queue_suspect",
            "created_at",
            postgresql_where=text(
                SUSPECT.format(attempts="retry_count", max_attempts="max_retries")
            ),
        ),
        Index(
            "idx_sync_queue_processing",
            "processing_started_at",
            postgresql_where=text("status = 'processing'"),
        ),
        Index(
            "idx_sync_queue_processed",
            "processed_at",
            postgresql_where=text("status = 'completed'"),
        ),
        # The unfinished rows that queue stats and /metrics count (alembic 0011).
        Index(
            "idx_sync_queue_unfinished",
            "status",
            "created_at",
            postgresql_where=text("status IN ('pending', 'processing', 'failed')"),
        ),
    )

    id: Mapped[UuidPk]
    # The order items were queued in; a record's items are pushed in this order.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    table_name: Mapped[str]
    record_id: Mapped[str]
    operation: Mapped[SyncOperation] = mapped_column(pg_enum(SyncOperation, "sync_operation"))
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    status: Mapped[ProcessingStatus] = mapped_column(
        pg_enum(ProcessingStatus, "processing_status"), server_default=text("'pending'")
    )
    retry_count: Mapped[int] = mapped_column(server_default=text("0"))
    max_retries: Mapped[int] = mapped_column(server_default=text("3"))
    next_retry_at: Mapped[datetime | None]
    error_message: Mapped[str | None]
    bubble_id: Mapped[str | None]  # the id Bubble gave the record (the user's, for a signup)
    result: Mapped[dict[str, Any] | None]  # every id a signup created, by step
    tries: Mapped[int] = mapped_column(server_default=text("0"))  # claims, lost runs included
    processing_started_at: Mapped[datetime | None]  # the claim's lease
    worker_id: Mapped[str | None]  # the worker process holding the claim (app.liveness)
    lost_runs: Mapped[int] = mapped_column(server_default=text("0"))
    created_at: Mapped[CreatedAt]
    processed_at: Mapped[datetime | None]
