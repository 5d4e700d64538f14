"""Cancelled sync jobs, and at most one active sync job per agency.

cancel-historical-sync must leave a job that is neither completed nor failed, and the seed's
sync_job_status has no value for that: 'cancelled' is added. The partial unique index lets the
schema refuse a second pending or in-progress job for the same agency.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TYPE sync_job_status ADD VALUE IF NOT EXISTS 'cancelled'")
    op.execute(
        "CREATE UNIQUE INDEX uq_sync_jobs_one_active ON historical_sync_jobs (agency_id) "
        "WHERE status IN ('pending', 'in_progress')"
    )


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value: rebuild the type without it.
    op.execute(
        """
        DROP INDEX uq_sync_jobs_one_active;
        DROP INDEX idx_sync_jobs_active;
        UPDATE historical_sync_jobs SET status = 'failed', error_message = 'cancelled'
            WHERE status = 'cancelled';
        ALTER TYPE sync_job_status RENAME TO sync_job_status_old;
        CREATE TYPE sync_job_status AS ENUM ('pending', 'in_progress', 'completed', 'failed');
        ALTER TABLE historical_sync_jobs ALTER COLUMN status DROP DEFAULT;
        ALTER TABLE historical_sync_jobs
            ALTER COLUMN status TYPE sync_job_status USING status::text::sync_job_status;
        ALTER TABLE historical_sync_jobs ALTER COLUMN status SET DEFAULT 'pending';
        DROP TYPE sync_job_status_old;
        CREATE INDEX idx_sync_jobs_active ON historical_sync_jobs (agency_id, status)
            WHERE status IN ('pending', 'in_progress');
        """
    )
