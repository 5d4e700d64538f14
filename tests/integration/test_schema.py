"""The migrated schema against the seeds' tables (seeds 001 and 002), read from the catalog."""

from __future__ import annotations

import re

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from alembic import command
from app import migrations
from app.models import Base

# (column, type, default, nullable) exactly as the seeds' tables write them.
SEED_COLUMNS = {
    "historical_sync_jobs": [
        ("id", "uuid", "uuid_generate_v4()", False),
        ("agency_id", "uuid", None, False),
        ("date_from", "timestamptz", None, True),
        ("date_to", "timestamptz", None, False),
        ("status", "sync_job_status", "'pending'", False),
        ("total_calls", "integer", None, True),
        ("processed_calls", "integer", "0", False),
        ("imported_calls", "integer", "0", False),
        ("skipped_calls", "integer", "0", False),
        ("failed_calls", "integer", "0", False),
        ("cursor", "text", None, True),
        ("error_message", "text", None, True),
        ("last_error_at", "timestamptz", None, True),
        ("max_calls", "integer", "100", True),
        ("created_at", "timestamptz", "now()", False),
        ("started_at", "timestamptz", None, True),
        ("completed_at", "timestamptz", None, True),
        ("last_activity_at", "timestamptz", None, True),
    ],
    "cron_job_logs": [
        ("id", "uuid", "gen_random_uuid()", False),
        ("job_name", "text", None, False),
        ("started_at", "timestamptz", "now()", True),
        ("completed_at", "timestamptz", None, True),
        ("status", "text", "'running'", True),
        ("result", "jsonb", None, True),
        ("error_message", "text", None, True),
        ("created_at", "timestamptz", "now()", True),
    ],
    "webhook_queue": [
        ("id", "uuid", "uuid_generate_v4()", False),
        ("agency_id", "uuid", None, False),
        ("event_type", "varchar(50)", None, False),
        ("payload", "jsonb", None, False),
        ("status", "processing_status", "'pending'", False),
        ("attempts", "integer", "0", False),
        ("max_attempts", "integer", "5", False),
        ("error_message", "text", None, True),
        ("created_at", "timestamptz", "now()", False),
        ("processing_started_at", "timestamptz", None, True),
        ("processed_at", "timestamptz", None, True),
        ("next_retry_at", "timestamptz", None, True),
    ],
    "webhook_logs": [
        ("id", "uuid", "uuid_generate_v4()", False),
        ("agency_id", "uuid", None, True),
        ("request_method", "varchar(10)", "'POST'", False),
        ("request_path", "text", None, False),
        ("request_headers", "jsonb", None, True),
        ("request_body", "jsonb", None, True),
        ("validation_success", "boolean", None, False),
        ("validation_error", "text", None, True),
        ("queue_item_id", "uuid", None, True),
        ("received_at", "timestamptz", "now()", False),
        ("source_ip", "inet", None, True),
    ],
    "enrichment_queue": [
        ("id", "uuid", "uuid_generate_v4()", False),
        ("call_id", "uuid", None, False),
        ("type", "enrichment_type", None, False),
        ("status", "processing_status", "'pending'", False),
        ("attempts", "integer", "0", False),
        ("max_attempts", "integer", "3", False),
        ("error_message", "text", None, True),
        ("priority", "integer", "100", False),
        ("created_at", "timestamptz", "now()", False),
        ("processing_started_at", "timestamptz", None, True),
        ("processed_at", "timestamptz", None, True),
        ("next_retry_at", "timestamptz", None, True),
    ],
}

# What callsync adds after the seed's columns: who holds a claim, and its lost runs
# (app.liveness, app.queue).
Column = tuple[str, str, str | None, bool]
LOST_RUNS: Column = ("lost_runs", "integer", "0", False)
WORKER_ID: Column = ("worker_id", "text", None, True)
ADDED_COLUMNS: dict[str, list[Column]] = {
    "historical_sync_jobs": [WORKER_ID, LOST_RUNS],
    "webhook_queue": [LOST_RUNS],
    # and the call's agency, for the claims' fair shares
    "enrichment_queue": [WORKER_ID, LOST_RUNS, ("agency_id", "uuid", None, False)],
}

# Constraint name -> (table, definition as pg_get_constraintdef prints it).
SEED_CONSTRAINTS = {
    "historical_sync_jobs_pkey": ("historical_sync_jobs", "PRIMARY KEY (id)"),
    "historical_sync_jobs_agency_id_fkey": (
        "historical_sync_jobs",
        "FOREIGN KEY (agency_id) REFERENCES agencies(id) ON DELETE CASCADE",
    ),
    "sync_jobs_counts_positive": (
        "historical_sync_jobs",
        "CHECK (((processed_calls >= 0) AND (imported_calls >= 0) AND (skipped_calls >= 0) "
        "AND (failed_calls >= 0)))",
    ),
    "sync_jobs_date_range": (
        "historical_sync_jobs",
        "CHECK (((date_from IS NULL) OR (date_from < date_to)))",
    ),
    "cron_job_logs_pkey": ("cron_job_logs", "PRIMARY KEY (id)"),
    "webhook_queue_pkey": ("webhook_queue", "PRIMARY KEY (id)"),
    "webhook_queue_agency_id_fkey": (
        "webhook_queue",
        "FOREIGN KEY (agency_id) REFERENCES agencies(id) ON DELETE CASCADE",
    ),
    "webhook_queue_max_attempts": ("webhook_queue", "CHECK ((attempts <= max_attempts))"),
    "webhook_logs_pkey": ("webhook_logs", "PRIMARY KEY (id)"),
    "webhook_logs_agency_id_fkey": (
        "webhook_logs",
        "FOREIGN KEY (agency_id) REFERENCES agencies(id) ON DELETE CASCADE",
    ),
    "enrichment_queue_pkey": ("enrichment_queue", "PRIMARY KEY (id)"),
    "enrichment_queue_unique_pending": ("enrichment_queue", "UNIQUE (call_id, type, status)"),
    "enrichment_queue_call_id_fkey": (
        "enrichment_queue",
        "FOREIGN KEY (call_id) REFERENCES calls(id) ON DELETE CASCADE",
    ),
    "enrichment_queue_max_attempts": ("enrichment_queue", "CHECK ((attempts <= max_attempts))"),
}

# Index name -> what follows "USING btree " in pg_indexes.indexdef.
SEED_INDEXES = {
    "idx_sync_jobs_agency": "(agency_id)",
    "idx_sync_jobs_status": "(status)",
    "idx_sync_jobs_active": "(agency_id, status) WHERE (status = ANY "
    "(ARRAY['pending'::sync_job_status, 'in_progress'::sync_job_status]))",
    "idx_sync_jobs_created": "(created_at DESC)",
    "idx_cron_job_logs_job_name": "(job_name)",
    "idx_cron_job_logs_started_at": "(started_at DESC)",
    "idx_webhook_queue_pending": "(created_at) WHERE (status = 'pending'::processing_status)",
    "idx_webhook_queue_retry": "(next_retry_at) WHERE ((status = 'failed'::processing_status) "
    "AND (attempts < max_attempts))",
    "idx_webhook_queue_agency": "(agency_id)",
    "idx_webhook_queue_status": "(status)",
    "idx_webhook_queue_processed": "(processed_at) WHERE (status = 'completed'::processing_status)",
    "idx_webhook_logs_agency": "(agency_id, received_at DESC)",
    "idx_webhook_logs_received": "(received_at DESC)",
    "idx_webhook_logs_failed": "(received_at DESC) WHERE (validation_success = false)",
    "idx_enrichment_queue_pending": "(priority, created_at) WHERE "
    "(status = 'pending'::processing_status)",
    "idx_enrichment_queue_retry": "(next_retry_at) WHERE ((status = 'failed'::processing_status) "
    "AND (attempts < max_attempts))",
    "idx_enrichment_queue_call": "(call_id)",
    "idx_enrichment_queue_type": "(type)",
    "idx_enrichment_queue_status": "(status)",
    "idx_enrichment_queue_processed": "(processed_at) WHERE "
    "(status = 'completed'::processing_status)",
}

SEED_ENUMS = {
    "sync_job_status": ["pending", "in_progress", "completed", "failed", "cancelled"],
    "processing_status": ["pending", "processing", "completed", "failed"],
    "enrichment_type": ["transcript", "analysis"],
}

SEED_FUNCTIONS = {
    "claim_sync_jobs_batch",
    "upsert_call_from_sync",
    "update_sync_job_progress",
    "complete_sync_job",
    "fail_sync_job",
    "decrypt_api_key",
    "encrypt_api_key",
}

COLUMNS_SQL = """
SELECT column_name, data_type, udt_name, character_maximum_length, column_default, is_nullable
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = :table
ORDER BY ordinal_position
"""


def _seed_type(data_type: str, udt_name: str, length: int | None) -> str:
    if data_type == "USER-DEFINED":
        return udt_name
    if data_type == "character varying":
        return f"varchar({length})"
    return {"timestamp with time zone": "timestamptz"}.get(data_type, data_type)


def _seed_default(default: str | None) -> str | None:
    return None if default is None else re.sub(r"::[a-z_ ]+$", "", default)


@pytest.mark.parametrize("table", sorted(SEED_COLUMNS))
def test_columns_match_the_seed(session: Session, table: str) -> None:
    rows = session.execute(text(COLUMNS_SQL), {"table": table}).all()
    found = [
        (
            row.column_name,
            _seed_type(row.data_type, row.udt_name, row.character_maximum_length),
            _seed_default(row.column_default),
            row.is_nullable == "YES",
        )
        for row in rows
    ]
    assert found == SEED_COLUMNS[table] + ADDED_COLUMNS.get(table, [])


def test_constraints_match_the_seed(session: Session) -> None:
    rows = session.execute(
        text(
            "SELECT conname, conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS definition "
            "FROM pg_constraint WHERE conname = ANY(:names)"
        ),
        {"names": list(SEED_CONSTRAINTS)},
    ).all()
    assert {row.conname: (row.tbl, row.definition) for row in rows} == SEED_CONSTRAINTS


def test_indexes_match_the_seed(session: Session) -> None:
    rows = session.execute(
        text("SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(:names)"),
        {"names": list(SEED_INDEXES)},
    ).all()
    found = {row.indexname: row.indexdef.split(" USING btree ", 1)[1] for row in rows}
    assert found == SEED_INDEXES


def test_enums_functions_triggers_and_view_exist(session: Session) -> None:
    enums = session.execute(
        text(
            "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels "
            "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname"
        )
    ).all()
    assert {name: labels for name, labels in enums if name in SEED_ENUMS} == SEED_ENUMS
    functions = set(session.scalars(text("SELECT proname FROM pg_proc")))
    assert functions >= SEED_FUNCTIONS
    triggers = set(session.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
    assert triggers >= {"call_ended_queue_transcript", "transcript_fetched_queue_analysis"}
    assert session.execute(text("SELECT * FROM virsyn_cron_jobs")).keys() == [
        "jobname",
        "schedule",
        "command",
        "active",
        "last_run_started_at",
        "last_run_status",
    ]


def test_models_match_the_migrated_database(database: str) -> None:
    """What `alembic check` verifies: autogenerate finds nothing to change."""
    engine = create_engine(database)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_migrations_round_trip() -> None:
    """upgrade head, downgrade base, upgrade head again, on an empty database of its own."""
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/callsync_test_round_trip"
    migrations.drop_database(url)
    try:
        migrations.upgrade(url)
        config = migrations.alembic_config(url)
        command.downgrade(config, "base")
        engine = create_engine(url)
        with engine.connect() as connection:
            left = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        engine.dispose()
        assert left == 0
        command.upgrade(config, "head")
    finally:
        migrations.drop_database(url)
