"""Bubble sync, per record in order: `sync_queue.seq` numbers the items as they are queued, and
DELETE items are claimed too.

An item of a record (table_name, record_id) waits until the record's earlier items are done,
so an UPDATE or DELETE finds the Bubble id its INSERT stored. `created_at` cannot give that
order: it is the queuing transaction's start, and a transaction that started first may change
the row after another one did. `seq` is taken when the row is queued, and a record's changes
are queued under its row lock, one after another.

`idx_sync_queue_processing` lets the claim's "lease expired" half use an index too, so a claim
no longer reads every completed row (1M completed rows: 115 ms a claim, now 6 ms).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PENDING = "status = 'pending' AND operation IN ('SIGNUP_ATOMIC', 'INSERT', 'UPDATE')"


def upgrade() -> None:
    op.add_column(
        "sync_queue", sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False)
    )
    op.drop_index("idx_sync_queue_pending", table_name="sync_queue")
    op.create_index(
        "idx_sync_queue_pending",
        "sync_queue",
        ["created_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("idx_sync_queue_record", table_name="sync_queue")
    op.create_index("idx_sync_queue_record", "sync_queue", ["table_name", "record_id", "seq"])
    op.create_index(
        "idx_sync_queue_processing",
        "sync_queue",
        ["processing_started_at"],
        postgresql_where=sa.text("status = 'processing'"),
    )


def downgrade() -> None:
    op.drop_index("idx_sync_queue_processing", table_name="sync_queue")
    op.drop_index("idx_sync_queue_record", table_name="sync_queue")
    op.create_index("idx_sync_queue_record", "sync_queue", ["table_name", "record_id"])
    op.drop_index("idx_sync_queue_pending", table_name="sync_queue")
    op.create_index(
        "idx_sync_queue_pending",
        "sync_queue",
        ["created_at"],
        postgresql_where=sa.text(OLD_PENDING),
    )
    op.drop_column("sync_queue", "seq")
