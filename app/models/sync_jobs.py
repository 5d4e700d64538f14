"""Seed 001: historical_sync_jobs and cron_job_logs, column for column."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, SyncJobStatus, UuidPk, pg_enum


class HistoricalSyncJob(Base):
    """One import of past Ultravox calls for a date range, resumable at `cursor`."""

    __tablename__ = "historical_sync_jobs"
    __table_args__ = (
        CheckConstraint(
            "processed_calls >= 0 AND imported_calls >= 0 AND skipped_calls >= 0 "
            "AND failed_calls >= 0",
            name="sync_jobs_counts_positive",
        ),
        CheckConstraint("date_from IS NULL OR date_from < date_to", name="sync_jobs_date_range"),
        Index("idx_sync_jobs_agency", "agency_id"),
        Index("idx_sync_jobs_status", "status"),
        Index(
            "idx_sync_jobs_active",
            "agency_id",
            "status",
            postgresql_where=text("status IN ('pending', 'in_progress')"),
        ),
        Index("idx_sync_jobs_created", text("created_at DESC")),
        Index(
            "uq_sync_jobs_one_active",
            "agency_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'in_progress')"),
        ),
    )

    id: Mapped[UuidPk]
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    date_from: Mapped[datetime | None]
    date_to: Mapped[datetime]
    status: Mapped[SyncJobStatus] = mapped_column(
        pg_enum(SyncJobStatus, "sync_job_status"), server_default=text("'pending'")
    )
    total_calls: Mapped[int | None]
    processed_calls: Mapped[int] = mapped_column(server_default=text("0"))
    imported_calls: Mapped[int] = mapped_column(server_default=text("0"))
    skipped_calls: Mapped[int] = mapped_column(server_default=text("0"))
    failed_calls: Mapped[int] = mapped_column(server_default=text("0"))
    cursor: Mapped[str | None]
    error_message: Mapped[str | None]
    last_error_at: Mapped[datetime | None]
    max_calls: Mapped[int | None] = mapped_column(server_default=text("100"))
    created_at: Mapped[CreatedAt]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime | None]
    worker_id: Mapped[str | None]  # the worker process running its page (app.liveness)
    lost_runs: Mapped[int] = mapped_column(server_default=text("0"))  # since its last page


class CronJobLog(Base):
    """One run of a periodic task: `running`, then `completed` with its result or `failed`."""

    __tablename__ = "cron_job_logs"
    __table_args__ = (
        Index("idx_cron_job_logs_job_name", "job_name"),
        Index("idx_cron_job_logs_started_at", text("started_at DESC")),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        primary_key=True, server_default=text("gen_random_uuid()")
    )
    job_name: Mapped[str]
    started_at: Mapped[datetime | None] = mapped_column(server_default=text("now()"))
    completed_at: Mapped[datetime | None]
    status: Mapped[str | None] = mapped_column(server_default=text("'running'"))
    result: Mapped[dict[str, Any] | None]
    error_message: Mapped[str | None]
    created_at: Mapped[datetime | None] = mapped_column(server_default=text("now()"))


class CronSchedule(Base):
    """The beat schedule as beat last published it; `virsyn_cron_jobs` reads it."""

    __tablename__ = "cron_schedule"

    job_name: Mapped[str] = mapped_column(primary_key=True)
    schedule: Mapped[str]
    task: Mapped[str]
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    updated_at: Mapped[CreatedAt]
