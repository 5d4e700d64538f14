"""The Bubble sync queue (seed 004): sync_queue, and `queue_bubble_sync()`, a trigger function
any table can use to queue its changes (`CREATE TRIGGER ... AFTER INSERT OR UPDATE OR DELETE
ON <table> FOR EACH ROW EXECUTE FUNCTION queue_bubble_sync('<bubble type>')`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


QUEUE_BUBBLE_SYNC = """
CREATE FUNCTION queue_bubble_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
-- TG_ARGV[0], if given, is the Bubble data type; the payload carries it as `_type`.
DECLARE
    row_data jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
BEGIN
    INSERT INTO sync_queue (table_name, record_id, operation, payload)
    VALUES (TG_TABLE_NAME, row_data ->> 'id', TG_OP::sync_operation,
            row_data || jsonb_build_object('_type', coalesce(TG_ARGV[0], TG_TABLE_NAME)));
    RETURN NULL;
END
$$;
"""


def upgrade() -> None:
    postgresql.ENUM("SIGNUP_ATOMIC", "INSERT", "UPDATE", "DELETE", name="sync_operation").create(
        op.get_bind()
    )
    op.create_table(
        "sync_queue",
        sa.Column("id", sa.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("record_id", sa.Text(), nullable=False),
        sa.Column(
            "operation",
            postgresql.ENUM(
                "SIGNUP_ATOMIC",
                "INSERT",
                "UPDATE",
                "DELETE",
                name="sync_operation",
                create_type=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
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
        sa.Column("retry_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_retries", sa.Integer(), server_default=sa.text("3"), nullable=False),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("bubble_id", sa.Text(), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("tries", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("processing_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "retry_count >= 0 AND max_retries >= 0", name=op.f("sync_queue_retries")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("sync_queue_pkey")),
    )
    op.create_index(
        op.f("idx_sync_queue_pending"),
        "sync_queue",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text(
            "status = 'pending' AND operation IN ('SIGNUP_ATOMIC', 'INSERT', 'UPDATE')"
        ),
    )
    op.create_index(
        op.f("idx_sync_queue_record"), "sync_queue", ["table_name", "record_id"], unique=False
    )
    op.create_index(
        op.f("idx_sync_queue_retry"),
        "sync_queue",
        ["next_retry_at"],
        unique=False,
        postgresql_where=sa.text("status = 'failed' AND retry_count < max_retries"),
    )
    op.create_index(
        "idx_sync_queue_processed",
        "sync_queue",
        ["processed_at"],
        unique=False,
        postgresql_where=sa.text("status = 'completed'"),
    )
    op.execute(QUEUE_BUBBLE_SYNC)


def downgrade() -> None:
    op.execute("DROP FUNCTION queue_bubble_sync()")
    op.drop_index("idx_sync_queue_processed", table_name="sync_queue")
    op.drop_index(
        op.f("idx_sync_queue_retry"),
        table_name="sync_queue",
        postgresql_where=sa.text("status = 'failed' AND retry_count < max_retries"),
    )
    op.drop_index(op.f("idx_sync_queue_record"), table_name="sync_queue")
    op.drop_index(
        op.f("idx_sync_queue_pending"),
        table_name="sync_queue",
        postgresql_where=sa.text(
            "status = 'pending' AND operation IN ('SIGNUP_ATOMIC', 'INSERT', 'UPDATE')"
        ),
    )
    op.drop_table("sync_queue")
    op.execute("DROP TYPE sync_operation")
