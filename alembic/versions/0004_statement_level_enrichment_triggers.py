"""The enrichment triggers fire once per statement, not once per row.

A historical sync upserts a page of 50 calls in one statement; a row-level trigger ran an
INSERT into enrichment_queue for each of them, about half the cost of the whole upsert.
These triggers see all the statement's rows at once through transition tables and queue
them with one INSERT ... SELECT. PostgreSQL allows transition tables only on single-event
triggers without a column list, so each seed trigger becomes an INSERT trigger that keeps
the seed's name and an UPDATE companion named `<seed name>_on_update`. What they queue is
unchanged: a transcript when a call's `ended` is first set, an analysis when its
`transcript_fetched_at` is first set.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
DROP TRIGGER call_ended_queue_transcript ON calls;
DROP TRIGGER transcript_fetched_queue_analysis ON calls;
DROP FUNCTION queue_transcript_on_call_ended();
DROP FUNCTION queue_analysis_on_transcript_fetched();

CREATE FUNCTION queue_enrichment_for_changed_calls() RETURNS trigger
LANGUAGE plpgsql AS $$
-- TG_ARGV[0] is the enrichment type, TG_ARGV[1] the column whose first value queues it.
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format(
            'INSERT INTO enrichment_queue (call_id, type)
             SELECT id, %L FROM new_rows WHERE %I IS NOT NULL
             ON CONFLICT ON CONSTRAINT enrichment_queue_unique_pending DO NOTHING',
            TG_ARGV[0], TG_ARGV[1]);
    ELSE
        EXECUTE format(
            'INSERT INTO enrichment_queue (call_id, type)
             SELECT n.id, %L FROM new_rows AS n JOIN old_rows AS o USING (id)
             WHERE n.%I IS NOT NULL AND o.%I IS NULL
             ON CONFLICT ON CONSTRAINT enrichment_queue_unique_pending DO NOTHING',
            TG_ARGV[0], TG_ARGV[1], TG_ARGV[1]);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER call_ended_queue_transcript
AFTER INSERT ON calls REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION queue_enrichment_for_changed_calls('transcript', 'ended');

CREATE TRIGGER call_ended_queue_transcript_on_update
AFTER UPDATE ON calls REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION queue_enrichment_for_changed_calls('transcript', 'ended');

CREATE TRIGGER transcript_fetched_queue_analysis
AFTER INSERT ON calls REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION
    queue_enrichment_for_changed_calls('analysis', 'transcript_fetched_at');

CREATE TRIGGER transcript_fetched_queue_analysis_on_update
AFTER UPDATE ON calls REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION
    queue_enrichment_for_changed_calls('analysis', 'transcript_fetched_at');
"""

DOWNGRADE = """
DROP TRIGGER call_ended_queue_transcript ON calls;
DROP TRIGGER call_ended_queue_transcript_on_update ON calls;
DROP TRIGGER transcript_fetched_queue_analysis ON calls;
DROP TRIGGER transcript_fetched_queue_analysis_on_update ON calls;
DROP FUNCTION queue_enrichment_for_changed_calls();

CREATE FUNCTION queue_transcript_on_call_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.ended IS NULL THEN
        INSERT INTO enrichment_queue (call_id, type) VALUES (NEW.id, 'transcript')
        ON CONFLICT ON CONSTRAINT enrichment_queue_unique_pending DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER call_ended_queue_transcript
AFTER INSERT OR UPDATE OF ended ON calls
FOR EACH ROW WHEN (NEW.ended IS NOT NULL)
EXECUTE FUNCTION queue_transcript_on_call_ended();

CREATE FUNCTION queue_analysis_on_transcript_fetched() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.transcript_fetched_at IS NULL THEN
        INSERT INTO enrichment_queue (call_id, type) VALUES (NEW.id, 'analysis')
        ON CONFLICT ON CONSTRAINT enrichment_queue_unique_pending DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER transcript_fetched_queue_analysis
AFTER INSERT OR UPDATE OF transcript_fetched_at ON calls
FOR EACH ROW WHEN (NEW.transcript_fetched_at IS NOT NULL)
EXECUTE FUNCTION queue_analysis_on_transcript_fetched();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
