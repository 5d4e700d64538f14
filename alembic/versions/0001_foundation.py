"""Foundation schema: agencies, calls, and the tables of seeds 001 and 002.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUMS = {
    "sync_job_status": ("pending", "in_progress", "completed", "failed"),
    "processing_status": ("pending", "processing", "completed", "failed"),
    "enrichment_type": ("transcript", "analysis"),
    "agency_role": ("owner", "admin", "member"),
}
TABLES = (
    "enrichment_queue",
    "webhook_queue",
    "webhook_logs",
    "historical_sync_jobs",
    "calls",
    "agency_members",
    "cron_schedule",
    "cron_job_logs",
    "agencies",
)


def upgrade() -> None:
    op.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
    op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    for name, values in ENUMS.items():
        postgresql.ENUM(*values, name=name).create(op.get_bind())
    op.create_table(
        "agencies",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ultravox_api_key_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("webhook_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("webhook_secret_previous_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("agencies_pkey")),
    )
    op.create_table(
        "cron_job_logs",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("job_name", sa.Text(), nullable=False),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=True
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'running'"), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("cron_job_logs_pkey")),
    )
    op.create_index(op.f("idx_cron_job_logs_job_name"), "cron_job_logs", ["job_name"], unique=False)
    op.create_index(
        op.f("idx_cron_job_logs_started_at"),
        "cron_job_logs",
        [sa.literal_column("started_at DESC")],
        unique=False,
    )
    op.create_table(
        "cron_schedule",
        sa.Column("job_name", sa.Text(), nullable=False),
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("job_name", name=op.f("cron_schedule_pkey")),
    )
    op.create_table(
        "agency_members",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("agency_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column(
            "role",
            postgresql.ENUM("owner", "admin", "member", name="agency_role", create_type=False),
            server_default=sa.text("'member'"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("agency_members_agency_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("agency_members_pkey")),
        sa.UniqueConstraint(
            "agency_id", "user_id", name=op.f("agency_members_agency_id_user_id_key")
        ),
    )
    op.create_index(op.f("idx_agency_members_user"), "agency_members", ["user_id"], unique=False)
    op.create_table(
        "calls",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("agency_id", sa.UUID(), nullable=False),
        sa.Column("ultravox_call_id", sa.UUID(), nullable=False),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("joined", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("billed_duration", sa.Text(), nullable=True),
        sa.Column("billed_duration_seconds", sa.Numeric(precision=12, scale=3), nullable=True),
        sa.Column("billing_status", sa.Text(), nullable=True),
        sa.Column("billed_side_input_tokens", sa.Integer(), nullable=True),
        sa.Column("billed_side_output_tokens", sa.Integer(), nullable=True),
        sa.Column("short_summary", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("transcript", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("transcript_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("analysis", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("analyzed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("calls_agency_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("calls_pkey")),
        sa.UniqueConstraint(
            "agency_id", "ultravox_call_id", name=op.f("calls_agency_id_ultravox_call_id_key")
        ),
    )
    op.create_index(
        op.f("idx_calls_agency_created"),
        "calls",
        ["agency_id", sa.literal_column("created DESC")],
        unique=False,
    )
    op.create_table(
        "historical_sync_jobs",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("agency_id", sa.UUID(), nullable=False),
        sa.Column("date_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("date_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(
                "pending",
                "in_progress",
                "completed",
                "failed",
                name="sync_job_status",
                create_type=False,
            ),
            server_default=sa.text("'pending'"),
            nullable=False,
        ),
        sa.Column("total_calls", sa.Integer(), nullable=True),
        sa.Column("processed_calls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("imported_calls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("skipped_calls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("failed_calls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_calls", sa.Integer(), server_default=sa.text("100"), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "date_from IS NULL OR date_from < date_to", name=op.f("sync_jobs_date_range")
        ),
        sa.CheckConstraint(
            "processed_calls >= 0 AND imported_calls >= 0 AND skipped_calls >= 0 AND failed_calls >= 0",
            name=op.f("sync_jobs_counts_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("historical_sync_jobs_agency_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("historical_sync_jobs_pkey")),
    )
    op.create_index(
        op.f("idx_sync_jobs_active"),
        "historical_sync_jobs",
        ["agency_id", "status"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'in_progress')"),
    )
    op.create_index(
        op.f("idx_sync_jobs_agency"), "historical_sync_jobs", ["agency_id"], unique=False
    )
    op.create_index(
        op.f("idx_sync_jobs_created"),
        "historical_sync_jobs",
        [sa.literal_column("created_at DESC")],
        unique=False,
    )
    op.create_index(op.f("idx_sync_jobs_status"), "historical_sync_jobs", ["status"], unique=False)
    op.create_table(
        "webhook_logs",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("agency_id", sa.UUID(), nullable=True),
        sa.Column(
            "request_method", sa.String(length=10), server_default=sa.text("'POST'"), nullable=False
        ),
        sa.Column("request_path", sa.Text(), nullable=False),
        sa.Column("request_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("request_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("validation_success", sa.Boolean(), nullable=False),
        sa.Column("validation_error", sa.Text(), nullable=True),
        sa.Column("queue_item_id", sa.UUID(), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("source_ip", postgresql.INET(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("webhook_logs_agency_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_logs_pkey")),
    )
    op.create_index(
        op.f("idx_webhook_logs_agency"),
        "webhook_logs",
        ["agency_id", sa.literal_column("received_at DESC")],
        unique=False,
    )
    op.create_index(
        op.f("idx_webhook_logs_failed"),
        "webhook_logs",
        [sa.literal_column("received_at DESC")],
        unique=False,
        postgresql_where=sa.text("validation_success = false"),
    )
    op.create_index(
        op.f("idx_webhook_logs_received"),
        "webhook_logs",
        [sa.literal_column("received_at DESC")],
        unique=False,
    )
    op.create_table(
        "webhook_queue",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("agency_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.String(length=50), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(
                "pending",
                "processing",
                "completed",
                "failed",
                name="processing_status",
                create_type=False,
            ),
            server_default=sa.text("'pending'"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("5"), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("processing_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("attempts <= max_attempts", name=op.f("webhook_queue_max_attempts")),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("webhook_queue_agency_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("webhook_queue_pkey")),
    )
    op.create_index(op.f("idx_webhook_queue_agency"), "webhook_queue", ["agency_id"], unique=False)
    op.create_index(
        op.f("idx_webhook_queue_pending"),
        "webhook_queue",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("idx_webhook_queue_processed"),
        "webhook_queue",
        ["processed_at"],
        unique=False,
        postgresql_where=sa.text("status = 'completed'"),
    )
    op.create_index(
        op.f("idx_webhook_queue_retry"),
        "webhook_queue",
        ["next_retry_at"],
        unique=False,
        postgresql_where=sa.text("status = 'failed' AND attempts < max_attempts"),
    )
    op.create_index(op.f("idx_webhook_queue_status"), "webhook_queue", ["status"], unique=False)
    op.create_table(
        "enrichment_queue",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("call_id", sa.UUID(), nullable=False),
        sa.Column(
            "type",
            postgresql.ENUM("transcript", "analysis", name="enrichment_type", create_type=False),
            nullable=False,
        ),
        sa.Column(
            "status",
            postgresql.ENUM(
                "pending",
                "processing",
                "completed",
                "failed",
                name="processing_status",
                create_type=False,
            ),
            server_default=sa.text("'pending'"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("3"), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), server_default=sa.text("100"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("processing_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("attempts <= max_attempts", name=op.f("enrichment_queue_max_attempts")),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("enrichment_queue_call_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("enrichment_queue_pkey")),
        sa.UniqueConstraint("call_id", "type", "status", name="enrichment_queue_unique_pending"),
    )
    op.create_index(
        op.f("idx_enrichment_queue_call"), "enrichment_queue", ["call_id"], unique=False
    )
    op.create_index(
        op.f("idx_enrichment_queue_pending"),
        "enrichment_queue",
        ["priority", "created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("idx_enrichment_queue_processed"),
        "enrichment_queue",
        ["processed_at"],
        unique=False,
        postgresql_where=sa.text("status = 'completed'"),
    )
    op.create_index(
        op.f("idx_enrichment_queue_retry"),
        "enrichment_queue",
        ["next_retry_at"],
        unique=False,
        postgresql_where=sa.text("status = 'failed' AND attempts < max_attempts"),
    )
    op.create_index(
        op.f("idx_enrichment_queue_status"), "enrichment_queue", ["status"], unique=False
    )
    op.create_index(op.f("idx_enrichment_queue_type"), "enrichment_queue", ["type"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
    for name in ENUMS:
        op.execute(f"DROP TYPE {name}")
