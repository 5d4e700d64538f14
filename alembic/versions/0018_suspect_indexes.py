"""The suspect indexes, on terms no other index can serve.

A claim looks for suspects (rows a lost run touched, due again) before every batch. The old
predicate named the statuses (`status IN ('pending', 'failed')`), so the claim had to too, and
the seed's idx_*_status could serve that term: when the statistics lagged behind a burst of
new rows, the planner read every pending row through it, on every claim. Now the predicate
says `status <> 'completed'`, which no btree index can use, and the claim tests whether a
suspect is due in a CASE, so only idx_*_suspect can find them.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUES = {  # table: its attempts and max_attempts columns
    "webhook_queue": ("attempts", "max_attempts"),
    "enrichment_queue": ("attempts", "max_attempts"),
    "sync_queue": ("retry_count", "max_retries"),
}
SUSPECT = "lost_runs > 0 AND status <> 'completed' AND {attempts} < {max_attempts}"
OLD_SUSPECT = "lost_runs > 0 AND status IN ('pending', 'failed') AND {attempts} < {max_attempts}"


def _suspect_indexes(predicate: str) -> None:
    for table, (attempts, max_attempts) in QUEUES.items():
        op.drop_index(f"idx_{table}_suspect", table_name=table)
        op.create_index(
            f"idx_{table}_suspect",
            table,
            ["created_at"],
            postgresql_where=sa.text(
                predicate.format(attempts=attempts, max_attempts=max_attempts)
            ),
        )


def upgrade() -> None:
    _suspect_indexes(SUSPECT)


def downgrade() -> None:
    _suspect_indexes(OLD_SUSPECT)
