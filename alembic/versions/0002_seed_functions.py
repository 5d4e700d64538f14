"""The seeds' RPCs, the enrichment triggers and the virsyn_cron_jobs view.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = r"""
-- Provider keys and webhook secrets are pgcrypto ciphertext; the key never leaves the caller's
-- settings. s2k-mode=1 (salted, not iterated): the key is random, not a password to stretch.
CREATE FUNCTION encrypt_api_key(p_plain text, p_key text) RETURNS bytea
LANGUAGE sql VOLATILE STRICT AS $$
    SELECT pgp_sym_encrypt(p_plain, p_key, 'cipher-algo=aes256, s2k-mode=1')
$$;

CREATE FUNCTION decrypt_api_key(p_encrypted bytea, p_key text) RETURNS text
LANGUAGE sql STABLE STRICT AS $$
    SELECT pgp_sym_decrypt(p_encrypted, p_key)
$$;

-- Claim up to p_batch_size jobs, oldest first: pending ones, and in_progress ones whose worker
-- stopped renewing last_activity_at for p_lease_seconds.
CREATE FUNCTION claim_sync_jobs_batch(p_batch_size integer DEFAULT 3, p_lease_seconds integer DEFAULT 300)
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

-- Insert or update a page of Ultravox Call objects (a jsonb array) in one statement.
-- `inserted` is true for calls that were new.
CREATE FUNCTION upsert_call_from_sync(p_agency_id uuid, p_calls jsonb)
RETURNS TABLE (call_id uuid, ultravox_call_id uuid, inserted boolean)
LANGUAGE sql VOLATILE AS $$
    INSERT INTO calls AS c (
        agency_id, ultravox_call_id, agent_id, created, joined, ended, end_reason,
        billed_duration, billed_duration_seconds, billing_status, billed_side_input_tokens,
        billed_side_output_tokens, short_summary, summary, metadata, raw
    )
    SELECT DISTINCT ON ((x ->> 'callId')::uuid)
        p_agency_id,
        (x ->> 'callId')::uuid,
        x ->> 'agentId',
        (x ->> 'created')::timestamptz,
        (x ->> 'joined')::timestamptz,
        (x ->> 'ended')::timestamptz,
        x ->> 'endReason',
        x ->> 'billedDuration',
        nullif(rtrim(x ->> 'billedDuration', 's'), '')::numeric,
        x ->> 'billingStatus',
        (x ->> 'billedSideInputTokens')::integer,
        (x ->> 'billedSideOutputTokens')::integer,
        x ->> 'shortSummary',
        x ->> 'summary',
        coalesce(x -> 'metadata', '{}'::jsonb),
        x
    FROM jsonb_array_elements(p_calls) AS x
    ORDER BY (x ->> 'callId')::uuid
    ON CONFLICT (agency_id, ultravox_call_id) DO UPDATE SET
        agent_id = EXCLUDED.agent_id,
        created = EXCLUDED.created,
        joined = EXCLUDED.joined,
        ended = coalesce(EXCLUDED.ended, c.ended),
        end_reason = EXCLUDED.end_reason,
        billed_duration = EXCLUDED.billed_duration,
        billed_duration_seconds = EXCLUDED.billed_duration_seconds,
        billing_status = EXCLUDED.billing_status,
        billed_side_input_tokens = EXCLUDED.billed_side_input_tokens,
        billed_side_output_tokens = EXCLUDED.billed_side_output_tokens,
        short_summary = EXCLUDED.short_summary,
        summary = EXCLUDED.summary,
        metadata = EXCLUDED.metadata,
        raw = EXCLUDED.raw,
        updated_at = now()
    WHERE c.raw IS DISTINCT FROM EXCLUDED.raw
    RETURNING c.id, c.ultravox_call_id, (c.xmax = 0)
$$;

-- Add one page's counts to the job and move its cursor; renews the job's lease.
CREATE FUNCTION update_sync_job_progress(
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
        last_activity_at = now()
    WHERE id = p_job_id
    RETURNING *
$$;

CREATE FUNCTION complete_sync_job(p_job_id uuid) RETURNS void
LANGUAGE sql VOLATILE AS $$
    UPDATE historical_sync_jobs
    SET status = 'completed', completed_at = now(), last_activity_at = now()
    WHERE id = p_job_id AND status IN ('pending', 'in_progress')
$$;

CREATE FUNCTION fail_sync_job(p_job_id uuid, p_error text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    UPDATE historical_sync_jobs
    SET status = 'failed', error_message = p_error, last_error_at = now(),
        completed_at = now(), last_activity_at = now()
    WHERE id = p_job_id AND status IN ('pending', 'in_progress')
$$;

-- call_ended_queue_transcript: a transcript item when calls.ended goes from null to a value.
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

-- transcript_fetched_queue_analysis: an analysis item once the transcript has been stored.
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

-- The active periodic schedule (published by beat) with each job's latest run.
CREATE VIEW virsyn_cron_jobs AS
SELECT s.job_name AS jobname, s.schedule, s.task AS command, s.active,
       last_run.started_at AS last_run_started_at, last_run.status AS last_run_status
FROM cron_schedule AS s
LEFT JOIN LATERAL (
    SELECT l.started_at, l.status FROM cron_job_logs AS l
    WHERE l.job_name = s.job_name
    ORDER BY l.started_at DESC
    LIMIT 1
) AS last_run ON true;
"""

DOWNGRADE = """
DROP VIEW virsyn_cron_jobs;
DROP TRIGGER transcript_fetched_queue_analysis ON calls;
DROP FUNCTION queue_analysis_on_transcript_fetched();
DROP TRIGGER call_ended_queue_transcript ON calls;
DROP FUNCTION queue_transcript_on_call_ended();
DROP FUNCTION fail_sync_job(uuid, text);
DROP FUNCTION complete_sync_job(uuid);
DROP FUNCTION update_sync_job_progress(uuid, text, integer, integer, integer, integer, integer);
DROP FUNCTION upsert_call_from_sync(uuid, jsonb);
DROP FUNCTION claim_sync_jobs_batch(integer, integer);
DROP FUNCTION decrypt_api_key(bytea, text);
DROP FUNCTION encrypt_api_key(text, text);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
