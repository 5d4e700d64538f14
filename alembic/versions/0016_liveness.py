"""Liveness: the workers table, who holds each claim (queue rows, sync jobs, dials, Salesforce
runs), and lost runs counted per row.

A claim is held while its worker's row in `workers` is renewed (app.liveness): a dead worker's
work is taken over within seconds instead of after LEASE_SECONDS. `lost_runs` counts the runs
of a row that a dead worker took with it; a row lost again and again is dead.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUSPECT = "lost_runs > 0 AND status IN ('pending', 'failed') AND {attempts} < {max_attempts}"
QUEUES = {  # table: its attempts and max_attempts columns
    "webhook_queue": ("attempts", "max_attempts"),
    "enrichment_queue": ("attempts", "max_attempts"),
    "sync_queue": ("retry_count", "max_retries"),
}
HELD = ("enrichment_queue", "sync_queue", "historical_sync_jobs")

# A job is taken when pending, or in progress with nobody running it: its worker is gone, or
# it was handed on and its next page has not started for p_lease_seconds. A job whose worker
# is alive is never taken, however slow its page. Taking a dead worker's job counts a lost run.
CLAIM_SYNC_JOBS = """
CREATE OR REPLACE FUNCTION claim_sync_jobs_batch(p_batch_size integer DEFAULT 3, p_lease_seconds integer DEFAULT 300)
RETURNS SETOF historical_sync_jobs
LANGUAGE sql VOLATILE AS $$
    UPDATE historical_sync_jobs AS j
    SET status = 'in_progress',
        started_at = coalesce(j.started_at, now()),
        last_activity_at = now(),
        worker_id = NULL,
        lost_runs = j.lost_runs + due.lost::integer
    FROM (
        SELECT h.id, h.worker_id IS NOT NULL AS lost FROM historical_sync_jobs AS h
        WHERE h.status = 'pending'
           OR (h.status = 'in_progress' AND CASE
                WHEN h.worker_id IS NULL THEN coalesce(h.last_activity_at, h.created_at)
                    < now() - make_interval(secs => p_lease_seconds)
                ELSE NOT EXISTS (SELECT FROM workers AS w WHERE w.id = h.worker_id)
               END)
        ORDER BY h.created_at
        LIMIT p_batch_size
        FOR UPDATE SKIP LOCKED
    ) AS due
    WHERE j.id = due.id
    RETURNING j.*
$$;
"""

OLD_CLAIM_SYNC_JOBS = """
CREATE OR REPLACE FUNCTION claim_sync_jobs_batch(p_batch_size integer DEFAULT 3, p_lease_seconds integer DEFAULT 300)
RETURNS SETOF historical_sync_jobs
LANGUAGE sql VOLATILE AS $$
    UPDATE historical_sync_jobs AS j
    SET status = 'in_progress',
        started_at = coalesce(j.started_at, now()),
        last_activity_at = now()
    WHERE j.id IN (
        SELECT id FROM historical_sync_jobs
        WHERE status = 'pending'
           OR (status = 'in_progress'
               AND coalesce(last_activity_at, created_at) < now() - make_interval(secs => p_lease_seconds))
        ORDER BY created_at
        LIMIT p_batch_size
        FOR UPDATE SKIP LOCKED
    )
    RETURNING j.*
$$;
"""

# A stored page is progress: the job's lost runs count again from there.
PROGRESS = """
CREATE OR REPLACE FUNCTION update_sync_job_progress(
    p_job_id uuid, p_cursor text, p_processed integer, p_imported integer,
    p_skipped integer, p_failed integer, p_total integer DEFAULT NULL
) RETURNS historical_sync_jobs
LANGUAGE sql VOLATILE AS $$
    UPDATE historical_sync_jobs SET
        cursor = p_cursor,
        processed_calls = processed_calls + p_processed,
        imported_calls = imported_calls + p_imported,
        skipped_calls = skipped_calls + p_skipped,
        failed_calls = failed_calls + p_failed,
        total_calls = coalesce(p_total, total_calls),
        last_activity_at = now(){lost_runs}
    WHERE id = p_job_id
    RETURNING *
$$;
"""


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("node", sa.Text(), nullable=False),
        sa.Column("boot", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "heartbeat_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("applying", postgresql.ARRAY(sa.Uuid()), nullable=True),
        sa.PrimaryKeyConstraint("id", name="workers_pkey"),
    )
    for table in HELD:
        op.add_column(table, sa.Column("worker_id", sa.Text(), nullable=True))
    op.add_column("campaign_dials", sa.Column("worker_id", sa.Text(), nullable=True))
    op.add_column("integrations", sa.Column("sync_worker_id", sa.Text(), nullable=True))
    for table in (*QUEUES, "historical_sync_jobs"):
        op.add_column(
            table, sa.Column("lost_runs", sa.Integer(), server_default="0", nullable=False)
        )
    for table, (attempts, max_attempts) in QUEUES.items():
        op.create_index(
            f"idx_{table}_suspect",
            table,
            ["created_at"],
            postgresql_where=sa.text(SUSPECT.format(attempts=attempts, max_attempts=max_attempts)),
        )
    op.execute(CLAIM_SYNC_JOBS)
    op.execute(PROGRESS.format(lost_runs=",\n        lost_runs = 0"))


def downgrade() -> None:
    op.execute(PROGRESS.format(lost_runs=""))
    op.execute(OLD_CLAIM_SYNC_JOBS)
    for table in QUEUES:
        op.drop_index(f"idx_{table}_suspect", table_name=table)
    op.drop_column("integrations", "sync_worker_id")
    op.drop_column("campaign_dials", "worker_id")
    for table in HELD:
        op.drop_column(table, "worker_id")
    for table in (*QUEUES, "historical_sync_jobs"):
        op.drop_column(table, "lost_runs")
    op.drop_table("workers")
