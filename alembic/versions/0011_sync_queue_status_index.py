"""sync_queue's unfinished rows by status, so `queue stats` and /metrics count them without
reading the completed rows (webhook_queue and enrichment_queue have idx_*_status already).

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNFINISHED = sa.text("status IN ('pending', 'processing', 'failed')")


def upgrade() -> None:
    op.create_index(
        "idx_sync_queue_unfinished",
        "sync_queue",
        ["status", "created_at"],
        unique=False,
        postgresql_where=UNFINISHED,
    )


def downgrade() -> None:
    op.drop_index("idx_sync_queue_unfinished", table_name="sync_queue", postgresql_where=UNFINISHED)
