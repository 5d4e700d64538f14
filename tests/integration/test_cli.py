"""The `callsync` command line as users run it: a real process with the test environment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto, security
from app.fakes.ultravox import FakeUltravox
from app.models import Agency, AgencyMember, AgencyRole, HistoricalSyncJob, SyncJobStatus
from tests.helpers import ROOT, make_agency

CALLSYNC = str(Path(sys.executable).parent / "callsync")


def callsync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CALLSYNC, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env or dict(os.environ),
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["db", "upgrade"],
        ["db", "adopt"],
        ["agency", "add"],
        ["agency", "add-member"],
        ["agency", "set-secrets"],
        ["token"],
        ["api"],
        ["fake", "ultravox"],
        ["sync", "start"],
        ["sync", "status"],
        ["sync", "cancel"],
        ["demo"],
        ["campaign", "create"],
        ["campaign", "add-leads"],
        ["campaign", "show"],
        ["salesforce", "set-client"],
        ["bubble", "replay"],
    ],
)
def test_every_command_has_help_even_without_configuration(command: list[str]) -> None:
    bare = {"PATH": os.environ["PATH"], "HOME": "/nonexistent"}
    if "PYTHONPATH" in os.environ:  # the code under test, when it is not the installed one
        bare["PYTHONPATH"] = os.environ["PYTHONPATH"]
    result = callsync(*command, "--help", env=bare)
    assert result.returncode == 0, result.stderr
    assert "Usage: callsync" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "--user", "nobody"], "Invalid value for '--user': Input should be a valid UUID"),
        (
            [
                "agency",
                "add-member",
                "--agency",
                str(uuid.UUID(int=1)),
                "--user",
                str(uuid.UUID(int=2)),
                "--role",
                "king",
            ],
            "'king' is not one of",
        ),
        (["frobnicate"], "No such command 'frobnicate'"),
        (
            [
                "sync",
                "start",
                "--agency",
                str(uuid.UUID(int=1)),
                "--date-to",
                "2030-01-01",
                "--max-calls",
                "0",
            ],
            "max_calls: Input should be greater than or equal to 1",
        ),
    ],
)
def test_a_bad_argument_gets_one_line_and_status_2(args: list[str], message: str) -> None:
    result = callsync(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("callsync: ")
    assert message in result.stderr


def test_a_bad_setting_stops_start_up_with_one_line_naming_it() -> None:
    env = {**os.environ, "ENCRYPTION_KEY": "short"}
    result = callsync("token", "--user", str(uuid.uuid4()), env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("callsync: invalid configuration: ENCRYPTION_KEY: ")
    assert "at least 16" in result.stderr
    assert result.stderr.count("\n") == 1
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "app", "inspect", "ping"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
        env={**os.environ, "JWT_SECRET": ""},
    )
    assert worker.returncode == 2
    assert (
        worker.stderr.strip()
        .splitlines()[-1]
        .startswith("callsync: invalid configuration: JWT_SECRET:")
    )


def test_agency_add_stores_secrets_encrypted_and_prints_only_the_id(session: Session) -> None:
    result = callsync(
        "agency",
        "add",
        "--name",
        "Acme",
        "--ultravox-api-key",
        "uv-secret-1",
        "--webhook-secret",
        "whsec-2",
    )
    assert result.returncode == 0, result.stderr
    agency_id = uuid.UUID(result.stdout.strip())
    assert "uv-secret-1" not in result.stdout + result.stderr
    agency = session.get_one(Agency, agency_id)
    assert agency.ultravox_api_key_encrypted is not None
    assert b"uv-secret-1" not in agency.ultravox_api_key_encrypted
    assert crypto.decrypt(session, agency.ultravox_api_key_encrypted) == "uv-secret-1"
    assert crypto.decrypt(session, agency.webhook_secret_encrypted) == "whsec-2"


def test_add_member_and_token(session: Session) -> None:
    agency = make_agency(session)
    user = uuid.uuid4()
    added = callsync(
        "agency", "add-member", "--agency", str(agency), "--user", str(user), "--role", "admin"
    )
    assert added.returncode == 0, added.stderr
    role = session.scalar(select(AgencyMember.role).where(AgencyMember.user_id == user))
    assert role == AgencyRole.admin
    missing = callsync(
        "agency",
        "add-member",
        "--agency",
        str(uuid.uuid4()),
        "--user",
        str(user),
        "--role",
        "admin",
    )
    assert (missing.returncode, missing.stderr.startswith("callsync: error: no agency")) == (
        2,
        True,
    )
    token = callsync("token", "--user", str(user), "--ttl", "60")
    assert security.user_from_token(token.stdout.strip()) == user


def test_sync_start_status_and_cancel(session: Session, fake_ultravox: FakeUltravox) -> None:
    fake_ultravox.inject("slow", seconds=2, times=10)  # if a worker runs, the job stays active
    agency = make_agency(session)
    started = callsync(
        "sync", "start", "--agency", str(agency), "--date-to", "2030-01-01", "--no-watch"
    )
    assert started.returncode == 0, started.stderr
    job_id = uuid.UUID(started.stdout.split()[2])
    status = callsync("sync", "status", str(job_id))
    assert status.returncode == 0, status.stderr
    assert status.stdout.split()[0] in ("pending", "in_progress")
    # The session's worker may have stored a page already: the counts are whatever it did.
    assert re.search(r"imported \d+, skipped \d+, failed 0", status.stdout), status.stdout
    cancelled = callsync("sync", "cancel", str(job_id))
    assert cancelled.stdout.strip() == f"sync job {job_id} is cancelled"
    job = session.get_one(HistoricalSyncJob, job_id)
    assert job.status == SyncJobStatus.cancelled
    again = callsync("sync", "cancel", str(job_id))
    assert (again.returncode, again.stderr.strip()) == (
        2,
        f"callsync: error: job {job_id} is already cancelled",
    )


def test_set_secrets_of_an_existing_agency_by_id(session: Session) -> None:
    agency = make_agency(session, api_key=None, webhook_secret="whsec-old")
    args = ("agency", "set-secrets", "--agency", str(agency))
    assert "give --ultravox-api-key" in callsync(*args).stderr
    key = callsync(*args, "--ultravox-api-key", "uv-carried-over")
    assert key.returncode == 0, key.stderr
    assert key.stdout.strip() == f"{agency}: Ultravox API key stored"
    assert "uv-carried-over" not in key.stdout + key.stderr
    row = session.get_one(Agency, agency)
    assert crypto.decrypt(session, row.ultravox_api_key_encrypted) == "uv-carried-over"
    assert crypto.decrypt(session, row.webhook_secret_encrypted) == "whsec-old"  # untouched
    both = callsync(*args, "--webhook-secret", "whsec-new", "--ultravox-api-key", "uv-2")
    assert both.stdout.strip() == f"{agency}: Ultravox API key and webhook secret stored"
    session.expire_all()
    row = session.get_one(Agency, agency)
    assert crypto.decrypt(session, row.ultravox_api_key_encrypted) == "uv-2"
    assert crypto.decrypt(session, row.webhook_secret_encrypted) == "whsec-new"
    unknown = callsync(
        "agency", "set-secrets", "--agency", str(uuid.uuid4()), "--webhook-secret", "x"
    )
    assert (unknown.returncode, unknown.stderr.startswith("callsync: error: no agency")) == (
        2,
        True,
    )
