"""CRM integrations (seed 003, sync-salesforce-leads): integrations with their encrypted
tokens and per-object watermark, sync_logs, and the lead lists a sync fills.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("business_id", sa.UUID(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'active'"), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column(
            "config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("instance_url", sa.Text(), nullable=True),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column(
            "sync_state",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_started_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint(
            "status IN ('active', 'needs_reauth', 'disabled')", name=op.f("integrations_status")
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("integrations_business_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("integrations_pkey")),
        sa.UniqueConstraint(
            "business_id", "provider", name=op.f("integrations_business_id_provider_key")
        ),
    )
    op.create_index(
        op.f("idx_integrations_sync_enabled"),
        "integrations",
        ["provider"],
        unique=False,
        postgresql_where=sa.text("(config ->> 'syncEnabled')::boolean AND status = 'active'"),
    )
    op.create_table(
        "lead_lists",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("business_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("lead_lists_business_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("lead_lists_pkey")),
        sa.UniqueConstraint("business_id", "name", name=op.f("lead_lists_business_id_name_key")),
    )
    op.create_table(
        "lead_list_members",
        sa.Column("list_id", sa.UUID(), nullable=False),
        sa.Column("lead_id", sa.UUID(), nullable=False),
        sa.Column(
            "added_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("lead_list_members_lead_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["lead_lists.id"],
            name=op.f("lead_list_members_list_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "lead_id", name=op.f("lead_list_members_pkey")),
    )
    op.create_index(
        op.f("idx_lead_list_members_lead"), "lead_list_members", ["lead_id"], unique=False
    )
    op.create_table(
        "sync_logs",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("integration_id", sa.UUID(), nullable=False),
        sa.Column("business_id", sa.UUID(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("records_processed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("records_created", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("records_updated", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("records_failed", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("records_skipped", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "skip_reasons",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('success', 'partial', 'failed')", name=op.f("sync_logs_status")
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("sync_logs_business_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("sync_logs_integration_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("sync_logs_pkey")),
    )
    op.create_index(
        op.f("idx_sync_logs_integration"),
        "sync_logs",
        ["integration_id", sa.literal_column("started_at DESC")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("idx_sync_logs_integration"), table_name="sync_logs")
    op.drop_table("sync_logs")
    op.drop_index(op.f("idx_lead_list_members_lead"), table_name="lead_list_members")
    op.drop_table("lead_list_members")
    op.drop_table("lead_lists")
    op.drop_index(
        op.f("idx_integrations_sync_enabled"),
        table_name="integrations",
        postgresql_where=sa.text("(config ->> 'syncEnabled')::boolean AND status = 'active'"),
    )
    op.drop_table("integrations")
