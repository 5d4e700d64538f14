"""`callsync demo`: the whole system on this machine against the fake Ultravox, then stopped.

It starts a fake Ultravox, a worker, beat and the API; imports the fake's calls through
`POST /api/historical-syncs`; shows the job, the stored calls, the enrichment items the
triggers queued, and the cron_job_logs rows; then stops everything it started.
"""

from __future__ import annotations

import os
import secrets
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from app import agencies, db, processes, security
from app.config import get_settings
from app.fakes import server
from app.fakes.ultravox import FakeUltravox, generate_calls
from app.models import AgencyRole
from app.ultravox import operations

LOG_DIR = processes.ROOT / "var" / "demo"
console = Console()


def run(*, calls: int) -> None:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    api_key = secrets.token_urlsafe(16)
    fake = FakeUltravox(
        api_key, generate_calls(calls, start=datetime.now(UTC) - timedelta(days=30))
    )
    with ExitStack() as stack:
        ultravox = stack.enter_context(fake.serve())
        console.print(f"[bold]fake Ultravox[/bold] at {ultravox.url} with {calls} calls")
        # The children read their settings from the environment; only the fake's URL differs.
        env = {**os.environ, "ULTRAVOX_API_BASE_URL": ultravox.url}  # noqa: TID251
        api_port = server.free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        for name, command, ready in _processes(api_port, api_url):
            process = stack.enter_context(
                processes.child(name, command, log_dir=LOG_DIR, ready=ready, env=env)
            )
            console.print(
                f"[bold]{name}[/bold] running (pid {process.pid}, log {LOG_DIR / name}.log)"
            )
        agency_id, token = _owner_token(api_key)
        job = _start_sync(api_url, token, calls)
        operations.watch(uuid.UUID(job["id"]))
        _show_cron_run(api_url)
        _show_summary(agency_id)
    console.print("[bold]stopped[/bold] worker, beat, API and fake Ultravox")


def _processes(
    api_port: int, api_url: str
) -> Iterator[tuple[str, list[str], Callable[[str], bool]]]:
    celery = [sys.executable, "-m", "celery", "-A", "app"]
    yield (
        "worker",
        [
            *celery,
            "worker",
            "-Q",
            "default,sync,webhooks,enrichment,campaigns",
            "-c",
            "2",
            "-l",
            "INFO",
        ],
        lambda log: " ready." in log,
    )
    yield "beat", [*celery, "beat", "-l", "INFO"], lambda log: "beat: Starting" in log
    yield (
        "api",
        [sys.executable, "-m", "uvicorn", "app.api.main:create_app", "--factory",
         "--port", str(api_port), "--log-level", "warning"],
        lambda _: _answers(f"{api_url}/readyz"),
    )  # fmt: skip


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _owner_token(api_key: str) -> tuple[uuid.UUID, str]:
    user_id = uuid.uuid4()
    with db.session_scope() as session:
        agency_id = agencies.add_agency(session, name="Demo agency", ultravox_api_key=api_key)
        agencies.add_member(session, agency_id=agency_id, user_id=user_id, role=AgencyRole.owner)
    console.print(f"[bold]agency[/bold] {agency_id} with owner {user_id}")
    return agency_id, security.create_token(user_id)


def _start_sync(api_url: str, token: str, calls: int) -> dict[str, Any]:
    body = {"date_to": (datetime.now(UTC) + timedelta(days=1)).isoformat(), "max_calls": calls}
    response = requests.post(
        f"{api_url}/api/historical-syncs",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    job: dict[str, Any] = response.json()
    console.print(f"POST /api/historical-syncs -> {response.status_code}, job {job['id']}")
    return job


def _show_cron_run(api_url: str) -> None:
    """Run process-historical-sync now, as pg_cron would, rather than wait for beat's minute."""
    service_token = get_settings().service_token
    headers = (
        {"Authorization": f"Bearer {service_token.get_secret_value()}"} if service_token else {}
    )
    response = requests.post(
        f"{api_url}/functions/v1/process-historical-sync", headers=headers, timeout=30
    )
    console.print(
        f"POST /functions/v1/process-historical-sync -> {response.status_code} {response.text}"
    )


SUMMARY_SQL = {
    "sync job": "SELECT status || ': ' || imported_calls || ' imported, ' || skipped_calls"
    " || ' skipped of ' || total_calls FROM historical_sync_jobs WHERE agency_id = :agency",
    "calls stored": "SELECT count(*) FROM calls WHERE agency_id = :agency",
    "transcripts queued by call_ended_queue_transcript": "SELECT count(*) FROM enrichment_queue"
    " JOIN calls ON calls.id = call_id WHERE type = 'transcript' AND agency_id = :agency",
    "latest cron run": "SELECT job_name || ' ' || status || ' ' || coalesce(result::text, '')"
    " FROM cron_job_logs ORDER BY started_at DESC LIMIT 1",
    "schedule (virsyn_cron_jobs)": "SELECT string_agg(jobname || ' ' || schedule, '; ')"
    " FROM virsyn_cron_jobs",
}


def _show_summary(agency_id: uuid.UUID) -> None:
    table = Table(title="What happened")
    table.add_column("what")
    table.add_column("value")
    with db.session_scope() as session:
        for label, sql in SUMMARY_SQL.items():
            value = session.scalar(text(sql), {"agency": agency_id} if ":agency" in sql else {})
            table.add_row(label, str(value))
    console.print(table)
