"""Outbound campaigns (seed 003): businesses, leads, campaigns, campaign_leads, the dial
ledger campaign_dials, conversations, conversation_events and call_logs.

The seed names the tables and their roles; the columns follow its flows. campaign_dials is
ours: a dial is reserved in it, unique per (campaign lead, attempt), before the call is
placed, so no attempt is dialled twice. `is_valid_timezone` lets checks refuse a timezone
name PostgreSQL does not know, so that the orchestrator's window arithmetic
(`now() AT TIME ZONE lead.timezone`) never fails on a row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ENUMS = {
    "campaign_status": ("draft", "active", "paused", "completed"),
    "campaign_lead_status": (
        "pending",
        "dialing",
        "contacted",
        "failed",
        "completed",
        "invalid_number",
    ),
    "dial_status": ("reserved", "placed", "failed", "unknown"),
}

IS_VALID_TIMEZONE = """
CREATE FUNCTION is_valid_timezone(p_name text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM now() AT TIME ZONE p_name;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END
$$;
"""


def upgrade() -> None:
    for name, values in ENUMS.items():
        postgresql.ENUM(*values, name=name).create(op.get_bind())
    op.execute(IS_VALID_TIMEZONE)
    op.create_table(
        "businesses",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("businesses_pkey")),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("business_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(
                "draft", "active", "paused", "completed", name="campaign_status", create_type=False
            ),
            server_default=sa.text("'draft'"),
            nullable=False,
        ),
        sa.Column("agent_id", sa.Text(), nullable=False),
        sa.Column("agent_phone_number_id", sa.Text(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column(
            "timezone", sa.Text(), server_default=sa.text("'America/New_York'"), nullable=False
        ),
        sa.Column(
            "call_window_start", sa.Time(), server_default=sa.text("'09:00'"), nullable=False
        ),
        sa.Column("call_window_end", sa.Time(), server_default=sa.text("'17:00'"), nullable=False),
        sa.Column("daily_call_cap", sa.Integer(), server_default=sa.text("100"), nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default=sa.text("3"), nullable=False),
        sa.Column(
            "retry_interval_minutes", sa.Integer(), server_default=sa.text("1440"), nullable=False
        ),
        sa.Column("exclude_dnc", sa.Boolean(), server_default=sa.text("true"), nullable=False),
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
            "call_window_start < call_window_end", name=op.f("campaigns_call_window")
        ),
        sa.CheckConstraint("daily_call_cap >= 0", name=op.f("campaigns_daily_call_cap")),
        sa.CheckConstraint(
            "end_date IS NULL OR start_date IS NULL OR start_date <= end_date",
            name=op.f("campaigns_date_range"),
        ),
        sa.CheckConstraint("is_valid_timezone(timezone)", name=op.f("campaigns_timezone_valid")),
        sa.CheckConstraint("max_attempts >= 1", name=op.f("campaigns_max_attempts")),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("campaigns_business_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("campaigns_pkey")),
    )
    op.create_index(
        op.f("idx_campaigns_active"),
        "campaigns",
        ["status"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(op.f("idx_campaigns_business"), "campaigns", ["business_id"], unique=False)
    op.create_table(
        "leads",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("business_id", sa.UUID(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("company", sa.Text(), nullable=True),
        sa.Column("timezone", sa.Text(), nullable=True),
        sa.Column("do_not_call", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("quality_rating", sa.Integer(), nullable=True),
        sa.Column("lead_score", sa.Integer(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
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
            "timezone IS NULL OR is_valid_timezone(timezone)", name=op.f("leads_timezone_valid")
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("leads_business_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("leads_pkey")),
        sa.UniqueConstraint(
            "business_id",
            "source",
            "source_id",
            name=op.f("leads_business_id_source_source_id_key"),
        ),
    )
    op.create_table(
        "call_logs",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("campaign_id", sa.UUID(), nullable=True),
        sa.Column("lead_id", sa.UUID(), nullable=True),
        sa.Column("to_number", sa.Text(), nullable=True),
        sa.Column("conversation_id", sa.Text(), nullable=True),
        sa.Column("call_sid", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("call_logs_campaign_id_fkey"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("call_logs_lead_id_fkey"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("call_logs_pkey")),
    )
    op.create_index(
        op.f("idx_call_logs_campaign"), "call_logs", ["campaign_id", "created_at"], unique=False
    )
    op.create_table(
        "campaign_leads",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("campaign_id", sa.UUID(), nullable=False),
        sa.Column("lead_id", sa.UUID(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(
                "pending",
                "dialing",
                "contacted",
                "failed",
                "completed",
                "invalid_number",
                name="campaign_lead_status",
                create_type=False,
            ),
            server_default=sa.text("'pending'"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("conversation_id", sa.Text(), nullable=True),
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
        sa.CheckConstraint("attempts >= 0", name=op.f("campaign_leads_attempts")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("campaign_leads_campaign_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("campaign_leads_lead_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("campaign_leads_pkey")),
        sa.UniqueConstraint(
            "campaign_id", "lead_id", name=op.f("campaign_leads_campaign_id_lead_id_key")
        ),
    )
    op.create_index(
        op.f("idx_campaign_leads_campaign_status"),
        "campaign_leads",
        ["campaign_id", "status"],
        unique=False,
    )
    op.create_index(op.f("idx_campaign_leads_lead"), "campaign_leads", ["lead_id"], unique=False)
    op.create_table(
        "conversations",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("conversation_id", sa.Text(), nullable=False),
        sa.Column("call_sid", sa.Text(), nullable=True),
        sa.Column("business_id", sa.UUID(), nullable=False),
        sa.Column("campaign_id", sa.UUID(), nullable=True),
        sa.Column("lead_id", sa.UUID(), nullable=True),
        sa.Column("status", sa.Text(), server_default=sa.text("'initiated'"), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("sentiment_score", sa.Double(), nullable=True),
        sa.Column(
            "key_points",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
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
            ["business_id"],
            ["businesses.id"],
            name=op.f("conversations_business_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("conversations_campaign_id_fkey"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("conversations_lead_id_fkey"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("conversations_pkey")),
        sa.UniqueConstraint("conversation_id", name=op.f("conversations_conversation_id_key")),
    )
    op.create_index(
        op.f("idx_conversations_campaign"), "conversations", ["campaign_id"], unique=False
    )
    op.create_index(
        op.f("idx_conversations_updated"), "conversations", ["updated_at"], unique=False
    )
    op.create_table(
        "campaign_dials",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("campaign_id", sa.UUID(), nullable=False),
        sa.Column("campaign_lead_id", sa.UUID(), nullable=False),
        sa.Column("lead_id", sa.UUID(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("to_number", sa.Text(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(
                "reserved", "placed", "failed", "unknown", name="dial_status", create_type=False
            ),
            server_default=sa.text("'reserved'"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("conversation_id", sa.Text(), nullable=True),
        sa.Column("call_sid", sa.Text(), nullable=True),
        sa.Column(
            "reserved_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("campaign_dials_campaign_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_lead_id"],
            ["campaign_leads.id"],
            name=op.f("campaign_dials_campaign_lead_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("campaign_dials_lead_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("campaign_dials_pkey")),
        sa.UniqueConstraint(
            "campaign_lead_id", "attempt", name=op.f("campaign_dials_campaign_lead_id_attempt_key")
        ),
    )
    op.create_index(
        op.f("idx_campaign_dials_campaign_reserved"),
        "campaign_dials",
        ["campaign_id", "reserved_at"],
        unique=False,
    )
    op.create_index(
        op.f("idx_campaign_dials_reserved"),
        "campaign_dials",
        ["reserved_at"],
        unique=False,
        postgresql_where=sa.text("status = 'reserved'"),
    )
    op.create_table(
        "conversation_events",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("conversation_id", sa.UUID(), nullable=False),
        sa.Column("event_index", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("time_in_call_secs", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("conversation_events_conversation_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("conversation_events_pkey")),
        sa.UniqueConstraint(
            "conversation_id",
            "event_index",
            name=op.f("conversation_events_conversation_id_event_index_key"),
        ),
    )


def downgrade() -> None:
    op.drop_table("conversation_events")
    op.drop_index(
        op.f("idx_campaign_dials_reserved"),
        table_name="campaign_dials",
        postgresql_where=sa.text("status = 'reserved'"),
    )
    op.drop_index(op.f("idx_campaign_dials_campaign_reserved"), table_name="campaign_dials")
    op.drop_table("campaign_dials")
    op.drop_index(op.f("idx_conversations_updated"), table_name="conversations")
    op.drop_index(op.f("idx_conversations_campaign"), table_name="conversations")
    op.drop_table("conversations")
    op.drop_index(op.f("idx_campaign_leads_lead"), table_name="campaign_leads")
    op.drop_index(op.f("idx_campaign_leads_campaign_status"), table_name="campaign_leads")
    op.drop_table("campaign_leads")
    op.drop_index(op.f("idx_call_logs_campaign"), table_name="call_logs")
    op.drop_table("call_logs")
    op.drop_table("leads")
    op.drop_index(op.f("idx_campaigns_business"), table_name="campaigns")
    op.drop_index(
        op.f("idx_campaigns_active"),
        table_name="campaigns",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("campaigns")
    op.drop_table("businesses")
    op.execute("DROP FUNCTION is_valid_timezone(text)")
    for name in ENUMS:
        op.execute(f"DROP TYPE {name}")
