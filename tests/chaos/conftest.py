"""The chaos suite: real worker processes, faults injected, and a table of what was injected
and what was found, printed at the end of the run.

`pytest` runs a short version (CI); `CHAOS_FULL=1 pytest -m chaos` (`make chaos`) runs the full
sizes. The workers here run with short leases and retry delays, so that what a lost worker or
a failed attempt leaves behind comes due within seconds.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery.beat import Scheduler
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app import db
from app.celery import app as celery_app
from app.fakes.ultravox import call_at, generate_calls
from app.models import WebhookEvent
from tests.helpers import ApiClient, Worker, make_agency, make_member, wait_for

FULL = os.environ.get("CHAOS_FULL") == "1"
EVENTS = 20_000 if FULL else 2_000  # webhook events drained under kill -9
CALLS = 20_000 if FULL else 2_000  # calls imported under kill -9
KILLS = 10 if FULL else 3
FUZZ_CASES = 10_000 if FULL else 1_000

LIFECYCLE = ("call.started", "call.joined", "call.ended", "call.billed")
LEASE_SECONDS = 5
CHAOS_ENV = {
    **os.environ,
    "LEASE_SECONDS": str(LEASE_SECONDS),
    "RETRY_BASE_SECONDS": "0.2",
    "RETRY_MAX_SECONDS": "1",
    "ULTRAVOX_TIMEOUT_SECONDS": "1",
}


@dataclass(frozen=True)
class Finding:
    check: str
    injected: str
    found: str
    ok: bool


FINDINGS: list[Finding] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.path).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.chaos)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FINDINGS:
        return
    size = "full" if FULL else "short (CHAOS_FULL=1 for the full run)"
    terminalreporter.section(f"chaos: what was injected, and what was found [{size}]")
    terminalreporter.write_line("| check | injected | found | ok |")
    terminalreporter.write_line("|---|---|---|---|")
    for finding in FINDINGS:
        ok = "yes" if finding.ok else "NO"
        terminalreporter.write_line(
            f"| {finding.check} | {finding.injected} | {finding.found} | {ok} |"
        )


@pytest.fixture
def report() -> Callable[[str, str, str, bool], None]:
    """Add a row to the table; the test still asserts what the row says."""

    def add(check: str, injected: str, found: str, ok: bool = True) -> None:
        FINDINGS.append(Finding(check, injected, found, ok))

    return add


@pytest.fixture
def chaos_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers with the chaos settings; each is stopped (or killed) afterwards."""
    with celery_app.connection_for_write() as connection:
        others = celery_app.control.ping(timeout=0.5, connection=connection)
    assert not others, f"another worker would take these tasks: {others}"
    started: list[Worker] = []

    def start(queues: str = "default,webhooks", **env: str) -> Worker:
        log = tmp_path / f"worker{len(started)}.log"
        worker = Worker(log, queues=queues, env={**CHAOS_ENV, **env})
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def tick(entry: str) -> None:
    """What beat does at its minute: send the entry's periodic task."""
    scheduler = Scheduler(app=celery_app, lazy=False)
    scheduler.apply_entry(scheduler.schedule[entry])


def ticking_until(
    entry: str, done: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05
) -> int:
    """Tick `entry` once a second, as a fast beat would, until `done()` (checked every
    `interval`); returns the ticks."""
    ticks = 0

    def tick_then_check() -> bool:
        nonlocal ticks
        if done():
            return True
        tick(entry)
        ticks += 1
        return wait_for_quietly(done, 1.0, interval=interval)

    wait_for(tick_then_check, timeout=timeout, what=what)
    return ticks


def wait_for_quietly(condition: Callable[[], bool], seconds: float, interval: float = 0.05) -> bool:
    try:
        wait_for(condition, timeout=seconds, interval=interval)
    except AssertionError:
        return False
    return True


def scalar(statement: Any) -> Any:
    """One value, read in a transaction of its own (the test's session may be stale)."""
    with db.session_scope() as session:
        return session.scalar(statement)


def count(model: Any, *where: Any) -> int:
    return int(scalar(select(func.count()).select_from(model).where(*where)) or 0)


def queue_events(agency: uuid.UUID, *, seed: int, events: int) -> int:
    """Every lifecycle event of `events` / 4 calls, queued; returns the number of calls."""
    calls = generate_calls(events // len(LIFECYCLE), seed=seed, live_every=0)
    rows = [
        {
            "agency_id": agency,
            "event_type": event,
            "payload": {"event": event, "call": call_at(call, event)},
        }
        for call in calls
        for event in LIFECYCLE
    ]
    with db.session_scope() as setup:
        setup.execute(insert(WebhookEvent), rows)
    return len(calls)


def start_sync(api: ApiClient, session: Session) -> uuid.UUID:
    """A new agency's owner starts an import of every call, through the API."""
    owner = make_member(session, make_agency(session), "owner")
    response = api.post(
        "/api/historical-syncs",
        json={"date_to": "2030-01-01T00:00:00Z", "max_calls": 100_000},
        headers={"Authorization": f"Bearer {owner}"},
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


@pytest.fixture(autouse=True)
def _isolated(clean_tables: None) -> None:
    """Every test here uses the database (tests/conftest.py: clean_tables)."""
