"""An integration's own OAuth client (a connected app of its org): used to refresh its token
when present, SALESFORCE_CLIENT_ID and _SECRET otherwise. The secret is pgcrypto ciphertext.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("integrations", sa.Column("oauth_client_id", sa.Text(), nullable=True))
    op.add_column(
        "integrations", sa.Column("oauth_client_secret_encrypted", sa.LargeBinary(), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("integrations", "oauth_client_secret_encrypted")
    op.drop_column("integrations", "oauth_client_id")
