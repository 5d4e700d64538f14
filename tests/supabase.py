"""A database shaped as the old Supabase project left it, built from SQL: Supabase's roles and
its auth and extensions schemas, the team's own agencies and calls, the tables of seeds 001 and
002 with their enums, constraints and indexes, the seed's trigger functions, RLS policies and
grants. Rows are added by the tests, in every state."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app import migrations

# Roles are cluster-wide: created when missing, never dropped.
ROLES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
END
$$;
"""

# The seed's triggers, under the documented names, with functions of the same names: an item
# once the column is first set.
SEED_TRIGGER = """
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR OLD.{column} IS NULL THEN
        INSERT INTO enrichment_queue (call_id, type, priority) VALUES (NEW.id, '{kind}', 100);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER {name} AFTER INSERT OR UPDATE ON calls FOR EACH ROW
WHEN (NEW.{column} IS NOT NULL) EXECUTE FUNCTION {name}();
"""
SEED_TRIGGERS = SEED_TRIGGER.format(
    name="call_ended_queue_transcript", column="ended_at", kind="transcript"
) + SEED_TRIGGER.format(
    name="transcript_fetched_queue_analysis", column="transcript_fetched_at", kind="analysis"
)

SCHEMA = """
CREATE SCHEMA extensions;
CREATE EXTENSION "uuid-ossp" WITH SCHEMA extensions;
CREATE EXTENSION pgcrypto WITH SCHEMA extensions;
CREATE SCHEMA auth;
CREATE TABLE auth.users (
    id uuid PRIMARY KEY,
    email text UNIQUE,
    created_at timestamptz DEFAULT now()
);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid
$$;
GRANT USAGE ON SCHEMA public, auth TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;

CREATE TABLE agencies (
    id uuid PRIMARY KEY DEFAULT extensions.uuid_generate_v4(),
    name text NOT NULL,
    slug text UNIQUE,
    ultravox_api_key text,
    owner_id uuid REFERENCES auth.users (id),
    created_at timestamptz DEFAULT now()
);
CREATE TABLE agency_users (
    agency_id uuid NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    role text NOT NULL DEFAULT 'member',
    PRIMARY KEY (agency_id, user_id)
);
CREATE TABLE calls (
    id uuid PRIMARY KEY DEFAULT extensions.uuid_generate_v4(),
    agency_id uuid NOT NULL REFERENCES agencies (id) ON DELETE CASCADE,
    ultravox_call_id uuid NOT NULL UNIQUE,
    status text NOT NULL DEFAULT 'active',
    started_at timestamptz,
    ended_at timestamptz,
    duration_seconds integer,
    recording_url text,
    transcript_fetched_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_calls_agency ON calls (agency_id);

CREATE TYPE sync_job_status AS ENUM ('pending', 'in_progress', 'completed', 'failed');
CREATE TYPE processing_status AS ENUM ('pending', 'processing', 'completed', 'failed');
CREATE TYPE enrichment_type AS ENUM ('transcript', 'analysis');

CREATE TABLE historical_sync_jobs (
    id uuid NOT NULL DEFAULT extensions.uuid_generate_v4(),
    agency_id uuid NOT NULL,
    date_from timestamptz,
    date_to timestamptz NOT NULL,
    status sync_job_status NOT NULL DEFAULT 'pending',
    total_calls integer,
    processed_calls integer NOT NULL DEFAULT 0,
    imported_calls integer NOT NULL DEFAULT 0,
    skipped_calls integer NOT NULL DEFAULT 0,
    failed_calls integer NOT NULL DEFAULT 0,
    cursor text,
    error_message text,
    last_error_at timestamptz,
    max_calls integer DEFAULT 100,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    last_activity_at timestamptz,
    CONSTRAINT historical_sync_jobs_pkey PRIMARY KEY (id),
    CONSTRAINT historical_sync_jobs_agency_id_fkey FOREIGN KEY (agency_id)
        REFERENCES agencies (id) ON DELETE CASCADE,
    CONSTRAINT sync_jobs_counts_positive CHECK (processed_calls >= 0 AND imported_calls >= 0
        AND skipped_calls >= 0 AND failed_calls >= 0),
    CONSTRAINT sync_jobs_date_range CHECK (date_from IS NULL OR date_from < date_to)
);
CREATE INDEX idx_sync_jobs_agency ON historical_sync_jobs (agency_id);
CREATE INDEX idx_sync_jobs_status ON historical_sync_jobs (status);
CREATE INDEX idx_sync_jobs_active ON historical_sync_jobs (agency_id, status)
    WHERE status IN ('pending', 'in_progress');
CREATE INDEX idx_sync_jobs_created ON historical_sync_jobs (created_at DESC);

CREATE TABLE cron_job_logs (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    job_name text NOT NULL,
    started_at timestamptz DEFAULT now(),
    completed_at timestamptz,
    status text DEFAULT 'running',
    result jsonb,
    error_message text,
    created_at timestamptz DEFAULT now(),
    CONSTRAINT cron_job_logs_pkey PRIMARY KEY (id)
);
CREATE INDEX idx_cron_job_logs_job_name ON cron_job_logs (job_name);
CREATE INDEX idx_cron_job_logs_started_at ON cron_job_logs (started_at DESC);

CREATE TABLE webhook_queue (
    id uuid NOT NULL DEFAULT extensions.uuid_generate_v4(),
    agency_id uuid NOT NULL,
    event_type varchar(50) NOT NULL,
    payload jsonb NOT NULL,
    status processing_status NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5,
    error_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    processing_started_at timestamptz,
    processed_at timestamptz,
    next_retry_at timestamptz,
    CONSTRAINT webhook_queue_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_queue_agency_id_fkey FOREIGN KEY (agency_id)
        REFERENCES agencies (id) ON DELETE CASCADE,
    CONSTRAINT webhook_queue_max_attempts CHECK (attempts <= max_attempts)
);
CREATE INDEX idx_webhook_queue_pending ON webhook_queue (created_at) WHERE status = 'pending';
CREATE INDEX idx_webhook_queue_retry ON webhook_queue (next_retry_at)
    WHERE status = 'failed' AND attempts < max_attempts;
CREATE INDEX idx_webhook_queue_agency ON webhook_queue (agency_id);
CREATE INDEX idx_webhook_queue_status ON webhook_queue (status);
CREATE INDEX idx_webhook_queue_processed ON webhook_queue (processed_at)
    WHERE status = 'completed';

CREATE TABLE webhook_logs (
    id uuid NOT NULL DEFAULT extensions.uuid_generate_v4(),
    agency_id uuid,
    request_method varchar(10) NOT NULL DEFAULT 'POST',
    request_path text NOT NULL,
    request_headers jsonb,
    request_body jsonb,
    validation_success boolean NOT NULL,
    validation_error text,
    queue_item_id uuid,
    received_at timestamptz NOT NULL DEFAULT now(),
    source_ip inet,
    CONSTRAINT webhook_logs_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_logs_agency_id_fkey FOREIGN KEY (agency_id)
        REFERENCES agencies (id) ON DELETE CASCADE
);
CREATE INDEX idx_webhook_logs_agency ON webhook_logs (agency_id, received_at DESC);
CREATE INDEX idx_webhook_logs_received ON webhook_logs (received_at DESC);
CREATE INDEX idx_webhook_logs_failed ON webhook_logs (received_at DESC)
    WHERE validation_success = false;

CREATE TABLE enrichment_queue (
    id uuid NOT NULL DEFAULT extensions.uuid_generate_v4(),
    call_id uuid NOT NULL,
    type enrichment_type NOT NULL,
    status processing_status NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3,
    error_message text,
    priority integer NOT NULL DEFAULT 100,
    created_at timestamptz NOT NULL DEFAULT now(),
    processing_started_at timestamptz,
    processed_at timestamptz,
    next_retry_at timestamptz,
    CONSTRAINT enrichment_queue_pkey PRIMARY KEY (id),
    CONSTRAINT enrichment_queue_unique_pending UNIQUE (call_id, type, status),
    CONSTRAINT enrichment_queue_call_id_fkey FOREIGN KEY (call_id)
        REFERENCES calls (id) ON DELETE CASCADE,
    CONSTRAINT enrichment_queue_max_attempts CHECK (attempts <= max_attempts)
);
CREATE INDEX idx_enrichment_queue_pending ON enrichment_queue (priority, created_at)
    WHERE status = 'pending';
CREATE INDEX idx_enrichment_queue_retry ON enrichment_queue (next_retry_at)
    WHERE status = 'failed' AND attempts < max_attempts;
CREATE INDEX idx_enrichment_queue_call ON enrichment_queue (call_id);
CREATE INDEX idx_enrichment_queue_type ON enrichment_queue (type);
CREATE INDEX idx_enrichment_queue_status ON enrichment_queue (status);
CREATE INDEX idx_enrichment_queue_processed ON enrichment_queue (processed_at)
    WHERE status = 'completed';

{seed_triggers}
-- Row level security as the old front end read its data through PostgREST.
ALTER TABLE agencies ENABLE ROW LEVEL SECURITY;
ALTER TABLE agency_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE calls ENABLE ROW LEVEL SECURITY;
ALTER TABLE historical_sync_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE enrichment_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE cron_job_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY "members read their agency" ON agencies FOR SELECT TO authenticated
    USING (id IN (SELECT agency_id FROM agency_users WHERE user_id = auth.uid()));
CREATE POLICY "members read their calls" ON calls FOR SELECT TO authenticated
    USING (agency_id IN (SELECT agency_id FROM agency_users WHERE user_id = auth.uid()));
CREATE POLICY "members read their syncs" ON historical_sync_jobs FOR SELECT TO authenticated
    USING (agency_id IN (SELECT agency_id FROM agency_users WHERE user_id = auth.uid()));
CREATE POLICY "members see themselves" ON agency_users FOR SELECT TO authenticated
    USING (user_id = auth.uid());
GRANT SELECT ON agencies, agency_users, calls, historical_sync_jobs TO authenticated;
REVOKE ALL ON webhook_queue, webhook_logs, enrichment_queue, cron_job_logs FROM anon, authenticated;
""".replace("{seed_triggers}", SEED_TRIGGERS)


def build(url: str, *, schema: str = SCHEMA) -> None:
    """A new database at `url` holding the old project's schema (no rows)."""
    migrations.drop_database(url)
    migrations.ensure_database(url)
    name = make_url(url).database
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(ROLES)
            connection.exec_driver_sql(
                f'ALTER DATABASE "{name}" SET search_path = "$user", public, extensions'
            )
        with engine.begin() as connection:
            connection.exec_driver_sql(schema)
    finally:
        engine.dispose()
