"""The old Supabase callers: the pg_cron jobs' SQL functions, and the schedule from the start.

`invoke_bubble_sync_processor()` and `invoke_bubble_sync_retry()` (seed 004) notify
`callsync_wake`; beat listens there and sends the periodic task at once (app.wake), so a
pg_cron job left in place keeps its queue moving and, after the move, only adds a claim that
finds nothing more. A database that already has functions of these names (one adopted from
Supabase, whose functions call pg_net) keeps its own.

`cron_schedule` gets the beat schedule now, so `virsyn_cron_jobs` lists it before beat first
starts; beat keeps it up to date from then on.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from app.cron_logs import seed_schedule

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAKE_FUNCTIONS = {
    "invoke_bubble_sync_processor": "bubble-sync-processor",
    "invoke_bubble_sync_retry": "bubble-sync-retry",
}
CREATE_WAKE_FUNCTION = """
DO $do$
BEGIN
    IF to_regprocedure('{name}()') IS NULL THEN
        CREATE FUNCTION {name}() RETURNS void
        LANGUAGE sql AS $$ SELECT pg_notify('callsync_wake', '{job}') $$;
        COMMENT ON FUNCTION {name}() IS 'Wakes callsync''s {job} (pg_notify callsync_wake)';
    END IF;
END
$do$;
"""


def upgrade() -> None:
    for name, job in WAKE_FUNCTIONS.items():
        op.execute(CREATE_WAKE_FUNCTION.format(name=name, job=job))
    seed_schedule(op.get_bind())


def downgrade() -> None:
    op.execute("DELETE FROM cron_schedule")  # beat publishes it again when it starts
    for name in WAKE_FUNCTIONS:  # only ours: a team's own function stays
        op.execute(
            f"DO $$ BEGIN IF obj_description(to_regprocedure('{name}()'), 'pg_proc') "
            f"LIKE 'Wakes callsync%' THEN DROP FUNCTION {name}(); END IF; END $$"
        )
