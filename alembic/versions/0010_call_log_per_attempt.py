"""A call_logs row for every dial attempt (seed 003, "Record conversations and call logs").

call_logs held only the placed calls whose conversation row could not be written. It now
holds one row per finished attempt, placed, failed or unknown, tied to its campaign_dials row
by `dial_id` (unique, so an attempt is logged once; its row follows the dial if a late answer
changes it). The attempts finished before this revision are logged from campaign_dials, and
the fallback rows already there are tied to their dial.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A fallback row names its conversation; it is tied to the one placed dial that started it.
TIE_FALLBACK_ROWS = """
    UPDATE call_logs AS l SET dial_id = d.id, attempt = d.attempt
    FROM campaign_dials AS d
    WHERE l.dial_id IS NULL AND d.status = 'placed' AND d.conversation_id = l.conversation_id
      AND (SELECT count(*) FROM campaign_dials WHERE conversation_id = l.conversation_id) = 1
      AND (SELECT count(*) FROM call_logs WHERE conversation_id = l.conversation_id) = 1
"""

LOG_FINISHED_DIALS = """
    INSERT INTO call_logs (dial_id, attempt, campaign_id, lead_id, to_number, conversation_id,
                           call_sid, status, error, created_at)
    SELECT d.id, d.attempt, d.campaign_id, d.lead_id, d.to_number, d.conversation_id,
           d.call_sid, d.status::text, d.error, coalesce(d.finished_at, d.reserved_at)
    FROM campaign_dials AS d
    WHERE d.status <> 'reserved'
      AND NOT EXISTS (SELECT 1 FROM call_logs AS l WHERE l.dial_id = d.id)
"""


def upgrade() -> None:
    op.add_column("call_logs", sa.Column("dial_id", sa.UUID(), nullable=True))
    op.add_column("call_logs", sa.Column("attempt", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("call_logs_dial_id_fkey"),
        "call_logs",
        "campaign_dials",
        ["dial_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_unique_constraint(op.f("call_logs_dial_id_key"), "call_logs", ["dial_id"])
    op.execute(TIE_FALLBACK_ROWS)
    op.execute(LOG_FINISHED_DIALS)


def downgrade() -> None:
    # Before this revision only the fallback rows were written: keep those, drop the rest.
    op.execute(
        "DELETE FROM call_logs WHERE NOT (status = 'placed' AND error IS NOT NULL "
        "AND error LIKE 'conversation not recorded: %')"
    )
    op.drop_constraint(op.f("call_logs_dial_id_key"), "call_logs", type_="unique")
    op.drop_constraint(op.f("call_logs_dial_id_fkey"), "call_logs", type_="foreignkey")
    op.drop_column("call_logs", "attempt")
    op.drop_column("call_logs", "dial_id")
