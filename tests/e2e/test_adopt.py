"""`callsync db adopt` on the database the old Supabase project left, rows in every state: it
adds only, changes nothing of the team's, and the waiting work then runs to its end on a real
worker and beat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from app import migrations
from app.config import get_settings
from app.fakes import server
from app.fakes.ultravox import FakeUltravox, call_at, send_webhook
from app.ultravox_api.client import UltravoxClient, cursor_from_next
from tests import supabase
from tests.conftest import ULTRAVOX_API_KEY
from tests.helpers import ROOT, Worker, beat, wait_for
from tests.integration.test_cli import CALLSYNC, callsync

pytestmark = pytest.mark.e2e

TEAM_DB = f"callsync_supabase_{os.getpid()}"
TEAM_URL = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{TEAM_DB}"
DATE_TO = datetime(2030, 1, 1, tzinfo=UTC)
TEAM_TABLES = (
    "agencies",
    "agency_users",
    "calls",
    "historical_sync_jobs",
    "cron_job_logs",
    "webhook_queue",
    "webhook_logs",
    "enrichment_queue",
)


# Calls whose transcript and analysis the work brings: waiting items (c1, c2), a waiting
# call.ended (c4), a failed one (c5), and one delivered to callsync's API after adoption (c8).
ANALYSED = ("c1", "c2", "c4", "c5", "c8")


@dataclass
class Seeded:
    """The ids of the rows the old system left."""

    agency_a: uuid.UUID = field(default_factory=uuid.uuid4)  # a sync in the middle of its pages
    agency_b: uuid.UUID = field(default_factory=uuid.uuid4)  # webhooks and enrichment waiting
    owner: uuid.UUID = field(default_factory=uuid.uuid4)
    job: uuid.UUID = field(default_factory=uuid.uuid4)
    page_one: set[str] = field(default_factory=set)  # the calls the sync already went past
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)  # name: Ultravox call
    rows: dict[str, uuid.UUID] = field(default_factory=dict)  # name: our row id


@pytest.fixture
def team_db() -> Iterator[Engine]:
    supabase.build(TEAM_URL)
    engine = create_engine(TEAM_URL, poolclass=NullPool)
    yield engine
    engine.dispose()
    migrations.drop_database(TEAM_URL)


def team_env(prefix: str) -> dict[str, str]:
    """The team database, and broker keys of their own: the suite's worker must not take
    these tasks (it works on the suite's database)."""
    return {**os.environ, "DATABASE_URL": TEAM_URL, "REDIS_KEY_PREFIX": prefix}


def test_adopt_adds_only_and_the_waiting_work_goes_on(
    team_db: Engine, fake_ultravox: FakeUltravox, tmp_path: Path
) -> None:
    seeded = load_rows(team_db)
    dump, rows = schema_dump(), all_rows(team_db)
    env = team_env(f"adopt-{uuid.uuid4().hex[:8]}:")
    rehearsal = callsync("db", "adopt", "--dry-run", env=env)
    assert rehearsal.returncode == 0, rehearsal.stderr
    assert "adds:    calls.ended: added, timestamp with time zone" in rehearsal.stdout
    assert "nothing changed" in rehearsal.stdout
    assert schema_dump() == dump
    adopted = callsync("db", "adopt", env=env)
    assert adopted.returncode == 0, adopted.stderr
    assert "adopted:" in adopted.stdout
    assert "kept:    calls.ended_at: the team's, kept written from calls.ended" in adopted.stdout
    assert "index uq_webhook_queue_event: over the rows from now on" in adopted.stdout
    assert only_additions(dump, schema_dump())
    assert unchanged(rows, all_rows(team_db))
    with team_db.connect() as connection:
        jobs = connection.scalars(text("SELECT jobname FROM virsyn_cron_jobs")).all()
    assert "process-historical-sync" in jobs
    assert len(jobs) == 9

    set_secrets(seeded, env)
    worker = Worker(tmp_path / "worker.log", env=env)  # adopt's claims wait for it in Redis
    try:
        with beat(tmp_path, env) as log, api(env) as url:
            deliver_twice(url, seeded, team_db)
            wait_for(lambda: all_done(team_db, seeded), timeout=90, what="the waiting work")
            check_the_work(team_db, seeded)
            wait_for(lambda: "listening for callsync_wake" in log.read_text(), what="beat")
            with team_db.begin() as connection:
                connection.execute(text("SELECT invoke_bubble_sync_processor()"))
            wait_for(
                lambda: bubble_ran(team_db), timeout=15, what="the woken bubble-sync-processor"
            )
    finally:
        worker.stop()
        subprocess.run(
            [sys.executable, "-m", "celery", "-A", "app", "purge", "-f"],
            env=env,
            capture_output=True,
            check=False,
            timeout=60,
        )
    again = callsync("db", "adopt", env=env)
    assert (again.returncode, "already migrated by callsync" in again.stderr) == (2, True)
    upgraded = callsync("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr


def test_adopt_refuses_what_would_break_callsync_and_changes_nothing() -> None:
    broken = supabase.SCHEMA.replace(
        "ultravox_call_id uuid NOT NULL UNIQUE,", "ultravox_call_id text NOT NULL UNIQUE,"
    ).replace("recording_url text,", "recording_url text, region text NOT NULL,")
    broken += "ALTER TABLE webhook_logs FORCE ROW LEVEL SECURITY;"
    supabase.build(TEAM_URL, schema=broken)
    try:
        dump = schema_dump()
        env = team_env("unused:")
        upgrade = callsync("db", "upgrade", env=env)
        assert (upgrade.returncode, "run `callsync db adopt` first" in upgrade.stderr) == (2, True)
        refused = callsync("db", "adopt", env=env)
        assert refused.returncode == 2
        assert "refused: calls.ultravox_call_id is text here; callsync needs uuid" in refused.stdout
        assert "refused: calls.region is NOT NULL without a default" in refused.stdout
        assert "refused: row level security applies to this role on webhook_logs" in refused.stdout
        assert "3 difference(s) would break callsync; nothing changed" in refused.stderr
        assert schema_dump() == dump
    finally:
        migrations.drop_database(TEAM_URL)


# The old project's rows.


def load_rows(engine: Engine) -> Seeded:
    seeded = Seeded()
    settings = get_settings()
    client = UltravoxClient(settings.ultravox_api_base_url, ULTRAVOX_API_KEY, timeout=10)
    page = client.list_calls(cursor=None, page_size=50, from_date=None, to_date=DATE_TO)
    cursor = cursor_from_next(page.next)
    seeded.page_one = {str(call.callId) for call in page.results}
    raw = json.loads(page.body)["results"]
    ended = [call for call in raw if call["ended"]]
    for name, call in zip(("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"), ended, strict=False):
        seeded.calls[name] = call
    with engine.begin() as connection:
        # As the old system wrote them, without firing its triggers a second time.
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        _people(connection, seeded)
        _calls(connection, seeded)
        _sync_jobs(connection, seeded, cursor)
        _webhooks(connection, seeded)
        _enrichment(connection, seeded)
        connection.execute(
            text(
                "INSERT INTO cron_job_logs (job_name, status, completed_at, result) VALUES "
                "('process-webhook-queue', 'completed', now(), '{\"processed\": 3}'), "
                "('process-historical-sync', 'running', NULL, NULL)"
            )
        )
    return seeded


def _people(connection: Connection, seeded: Seeded) -> None:
    connection.execute(
        text("INSERT INTO auth.users (id, email) VALUES (:id, 'owner@team.test')"),
        {"id": seeded.owner},
    )
    connection.execute(
        text(
            "INSERT INTO agencies (id, name, slug, ultravox_api_key, owner_id) VALUES "
            "(:a, 'Agency A', 'a', 'vault:enc:1', :owner), (:b, 'Agency B', 'b', NULL, NULL)"
        ),
        {"a": seeded.agency_a, "b": seeded.agency_b, "owner": seeded.owner},
    )
    connection.execute(
        text("INSERT INTO agency_users VALUES (:a, :owner, 'owner')"),
        {"a": seeded.agency_a, "owner": seeded.owner},
    )


def _calls(connection: Connection, seeded: Seeded) -> None:
    """c1..c3 were imported, ended; c4 was live when last heard of."""
    for name in ("c1", "c2", "c3", "c4"):
        call = seeded.calls[name]
        ended_at = None if name == "c4" else call["ended"]
        fetched = datetime.now(UTC) if name == "c3" else None
        seeded.rows[name] = connection.execute(
            text(
                "INSERT INTO calls (agency_id, ultravox_call_id, status, started_at, ended_at, "
                "transcript_fetched_at) VALUES (:agency, :uv, :status, :started, :ended, "
                ":fetched) RETURNING id"
            ),
            {
                "agency": seeded.agency_b,
                "uv": call["callId"],
                "started": call["joined"],
                "ended": ended_at,
                "status": "active" if ended_at is None else "ended",
                "fetched": fetched,
            },
        ).scalar_one()


def _sync_jobs(connection: Connection, seeded: Seeded, cursor: str | None) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    connection.execute(
        text(
            "INSERT INTO historical_sync_jobs (id, agency_id, date_to, status, total_calls, "
            "processed_calls, imported_calls, skipped_calls, cursor, max_calls, started_at, "
            "last_activity_at) VALUES (:id, :a, :to, 'in_progress', 237, 50, 45, 5, :cursor, "
            "100, :ago, :ago)"
        ),
        {
            "id": seeded.job,
            "a": seeded.agency_a,
            "to": DATE_TO,
            "cursor": cursor,
            "ago": an_hour_ago,
        },
    )
    connection.execute(
        text(
            "INSERT INTO historical_sync_jobs (agency_id, date_to, status, processed_calls, "
            "imported_calls, completed_at, error_message) VALUES "
            "(:a, :to, 'completed', 10, 10, now(), NULL), "
            "(:a, :to, 'failed', 0, 0, now(), 'Agency API key not configured')"
        ),
        {"a": seeded.agency_a, "to": DATE_TO - timedelta(days=30)},
    )


def _webhooks(connection: Connection, seeded: Seeded) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    rows: list[
        tuple[str, str, str, str, int, dict[str, Any]]
    ] = [  # name, event, call, status, attempts, extra
        ("w1", "call.ended", "c4", "pending", 0, {}),
        ("w1_again", "call.ended", "c4", "pending", 0, {}),  # Ultravox retried the delivery
        (
            "w2",
            "call.ended",
            "c5",
            "failed",
            2,
            {"next_retry_at": past, "error_message": "timeout"},
        ),
        ("w3", "call.joined", "c4", "completed", 1, {"processed_at": past}),
        (
            "w4",
            "call.started",
            "c6",
            "processing",
            1,
            {"processing_started_at": past - timedelta(hours=1)},
        ),
        ("w5", "call.ended", "c7", "failed", 5, {"error_message": "dead"}),
    ]
    for name, event, call, status, attempts, extra in rows:
        payload = {"event": event, "call": call_at(seeded.calls[call], event)}
        values = {
            "agency_id": seeded.agency_b,
            "event_type": event,
            "payload": json.dumps(payload),
            "status": status,
            "attempts": attempts,
            **extra,
        }
        columns = ", ".join(values)
        marks = ", ".join(f"CAST(:{c} AS jsonb)" if c == "payload" else f":{c}" for c in values)
        seeded.rows[name] = connection.execute(
            text(f"INSERT INTO webhook_queue ({columns}) VALUES ({marks}) RETURNING id"),  # noqa: S608
            values,
        ).scalar_one()
    connection.execute(
        text(
            "INSERT INTO webhook_logs (agency_id, request_path, validation_success, "
            "validation_error, queue_item_id) VALUES (:b, '/functions/v1/webhook-ingest', true, "
            "NULL, :w1), (:b, '/functions/v1/webhook-ingest', false, 'bad signature', NULL)"
        ),
        {"b": seeded.agency_b, "w1": seeded.rows["w1"]},
    )


def _enrichment(connection: Connection, seeded: Seeded) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    for name, call, kind, status, attempts in (
        ("e1", "c1", "transcript", "pending", 0),
        ("e2", "c2", "transcript", "failed", 1),
        ("e3", "c3", "transcript", "completed", 1),
        ("e3_analysis", "c3", "analysis", "completed", 1),
    ):
        seeded.rows[name] = connection.execute(
            text(
                "INSERT INTO enrichment_queue (call_id, type, status, attempts, next_retry_at, "
                "processed_at) VALUES (:call, :kind, :status, :attempts, :retry, :done) "
                "RETURNING id"
            ),
            {
                "call": seeded.rows[call],
                "kind": kind,
                "status": status,
                "attempts": attempts,
                "retry": past if status == "failed" else None,
                "done": past if status == "completed" else None,
            },
        ).scalar_one()


def set_secrets(seeded: Seeded, env: dict[str, str]) -> None:
    for agency in (seeded.agency_a, seeded.agency_b):
        secrets = ("--ultravox-api-key", ULTRAVOX_API_KEY, "--webhook-secret", "whsec-team")
        done = callsync("agency", "set-secrets", "--agency", str(agency), *secrets, env=env)
        assert done.returncode == 0, done.stderr
    member = add_owner(seeded.agency_a, seeded.owner, env)
    assert member.returncode == 0, member.stderr
    stranger = add_owner(seeded.agency_a, uuid.uuid4(), env)
    assert stranger.returncode == 2
    assert "in auth.users" in stranger.stderr


def add_owner(
    agency: uuid.UUID, user: uuid.UUID, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    ids = ("--agency", str(agency), "--user", str(user))
    return callsync("agency", "add-member", *ids, "--role", "owner", env=env)


@contextmanager
def api(env: dict[str, str]) -> Iterator[str]:
    """`callsync api` on the adopted database; yields its URL."""
    port = server.free_port()
    process = subprocess.Popen(
        [CALLSYNC, "api", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), what="the API")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=1).ok
    except requests.ConnectionError:
        return False


def deliver_twice(url: str, seeded: Seeded, engine: Engine) -> None:
    """Ultravox retries: the second delivery of c8's call.ended is known and queues nothing."""
    call = call_at(seeded.calls["c8"], "call.ended")
    hook = f"{url}/webhooks/ultravox/{seeded.agency_b}"
    for _ in range(2):
        assert send_webhook(hook, "call.ended", call, "whsec-team").status_code == 204
    with engine.connect() as connection:
        queued = connection.scalar(
            text("SELECT count(*) FROM webhook_queue WHERE payload #>> '{call,callId}' = :id"),
            {"id": call["callId"]},
        )
    assert queued == 1


# What the work left.


def all_done(engine: Engine, seeded: Seeded) -> bool:
    with engine.connect() as connection:
        job = connection.scalar(
            text("SELECT status::text FROM historical_sync_jobs WHERE id = :id"), {"id": seeded.job}
        )
        waiting = connection.scalar(
            text(
                "SELECT (SELECT count(*) FROM webhook_queue WHERE status <> 'completed' AND attempts < max_attempts)"
                " + (SELECT count(*) FROM enrichment_queue WHERE status <> 'completed')"
            )
        )
        analysed = connection.scalar(
            text(
                "SELECT count(*) FROM calls WHERE analysis IS NOT NULL AND ultravox_call_id = ANY(:ids)"
            ),
            {"ids": [uuid.UUID(seeded.calls[n]["callId"]) for n in ANALYSED]},
        )
    return bool(job == "completed" and waiting == 0 and analysed == len(ANALYSED))


def check_the_work(engine: Engine, seeded: Seeded) -> None:
    with engine.connect() as connection:
        queue: dict[uuid.UUID, str] = dict(
            connection.execute(text("SELECT id, status::text FROM webhook_queue")).all()
        )
        assert queue[seeded.rows["w5"]] == "failed"  # dead stays dead until a replay
        assert {queue[seeded.rows[n]] for n in ("w1", "w1_again", "w2", "w3", "w4")} == {
            "completed"
        }
        c4 = connection.execute(
            text(
                "SELECT ended, ended_at, started_at, joined, raw IS NOT NULL "
                "FROM calls WHERE id = :id"
            ),
            {"id": seeded.rows["c4"]},
        ).one()
        assert c4[0] is not None
        assert c4[1] == c4[0]
        assert c4[4]
        assert c4[2] == c4[3]
        created = connection.scalar(
            text("SELECT count(*) FROM calls WHERE ultravox_call_id = ANY(:ids)"),
            {"ids": [uuid.UUID(seeded.calls[n]["callId"]) for n in ("c5", "c6")]},
        )
        assert created == 2
        twice = connection.scalar(
            text(
                "SELECT count(*) FROM enrichment_queue GROUP BY call_id, type ORDER BY 1 DESC LIMIT 1"
            )
        )
        assert twice == 1  # the team's trigger and callsync's queued each item once
        without_agency = connection.scalar(
            text("SELECT count(*) FROM enrichment_queue WHERE agency_id IS NULL")
        )
        assert without_agency == 0  # the team's items were filled, and its trigger's too
        job = connection.execute(
            text("SELECT processed_calls, imported_calls FROM historical_sync_jobs WHERE id = :id"),
            {"id": seeded.job},
        ).one()
        assert job[0] > 50
        assert job[1] >= 100
        imported = set(
            connection.scalars(
                text("SELECT ultravox_call_id::text FROM calls WHERE agency_id = :a"),
                {"a": seeded.agency_a},
            )
        )
        assert len(imported) == job[1] - 45
        assert not imported & seeded.page_one
        connection.execute(text("SET ROLE anon"))
        assert connection.scalar(text("SELECT count(*) FROM agency_members")) == 0  # RLS, no policy
        connection.execute(text("RESET ROLE"))


def bubble_ran(engine: Engine) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM cron_job_logs WHERE job_name = 'bubble-sync-processor' "
                    "AND status = 'completed'"
                )
            )
        )


# Comparing before and after.


def schema_dump() -> list[str]:
    dump = subprocess.run(
        ["pg_dump", "--schema-only", "-h", "127.0.0.1", "-U", "postgres", TEAM_DB],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # \restrict lines carry a random key of each dump.
    lines = dump.stdout.splitlines()
    return [
        line.rstrip(",") for line in lines if not line.startswith(("\\restrict", "\\unrestrict"))
    ]


def only_additions(before: list[str], after: list[str]) -> bool:
    """Every line of the dump before is still there (a column list's last line only gains a
    comma, which is dropped from both)."""
    missing = Counter(before) - Counter(after)
    assert not missing, sorted(missing)
    return True


def all_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as connection:
        tables = {table: f"public.{table}" for table in TEAM_TABLES} | {"auth.users": "auth.users"}
        return {
            name: sorted(
                connection.scalars(text(f"SELECT to_jsonb(t) FROM {table} AS t")),  # noqa: S608
                key=lambda row: json.dumps(row, sort_keys=True),
            )
            for name, table in tables.items()
        }


def unchanged(
    before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]
) -> bool:
    """The team's rows, in the team's columns, are what they were."""
    for table, rows in before.items():
        kept = [{k: row[k] for k in rows[0]} for row in after[table]] if rows else after[table]
        key = lambda row: json.dumps(row, sort_keys=True)  # noqa: E731
        assert sorted(kept, key=key) == sorted(rows, key=key), table
    return True
