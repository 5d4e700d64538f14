"""provider_pauses: an agency's (or business's, or everyone's) work for one provider waits for
a credential, instead of failing item after item until they are dead.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_pauses",
        sa.Column(
            "id", postgresql.UUID(), server_default=sa.text("uuid_generate_v4()"), nullable=False
        ),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("agency_id", postgresql.UUID(), sa.ForeignKey("agencies.id", ondelete="CASCADE")),
        sa.Column(
            "business_id", postgresql.UUID(), sa.ForeignKey("businesses.id", ondelete="CASCADE")
        ),
        sa.Column("credential", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "since", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_provider_pauses_scope",
        "provider_pauses",
        ["provider", "agency_id", "business_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )


def downgrade() -> None:
    op.drop_table("provider_pauses")
