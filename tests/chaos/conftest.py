"""The chaos suite: real worker processes at the settings a user gets, faults injected, and
two tables printed at the end of the run: the recovery scenarios, in the shape of the
PostgreSQL job-queue chaos benchmark (completion against a fault-free baseline, time to
recover, lost and doubled effects), and the other checks, what was injected and found.

`pytest` runs a short version (CI); `CHAOS_FULL=1 pytest -m chaos` (`make chaos`) runs the full
sizes. Nothing here shortens a lease or ticks beat fast: a lost worker's work comes back
through the workers' own rescue (app.rescue), as it does for a user.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery.beat import Scheduler
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app import db
from app.celery import app as celery_app
from app.fakes.ultravox import call_at, generate_calls
from app.models import WebhookEvent, WorkerProcess
from tests.helpers import ApiClient, Worker, make_agency, make_member, wait_for

FULL = os.environ.get("CHAOS_FULL") == "1"
EVENTS = 20_000 if FULL else 2_000  # webhook events drained under kill -9
CALLS = 20_000 if FULL else 2_000  # calls imported under kill -9
KILLS = 10 if FULL else 3
FUZZ_CASES = 10_000 if FULL else 1_000
RECOVERY_GOAL = 30.0  # seconds from a fault to the work going on again

LIFECYCLE = ("call.started", "call.joined", "call.ended", "call.billed")
CHAOS_ENV = dict(os.environ)  # the defaults: no setting changed


@dataclass(frozen=True)
class Scenario:
    """One row of the recovery table."""

    name: str
    work: str
    done: int
    total: int
    seconds: float
    baseline: float | None  # the same work without the fault, measured in this run
    recovery: float | None  # the slowest recovery: from a fault to the work going on again
    lost: int
    doubled: int

    @property
    def ok(self) -> bool:
        recovered = self.recovery is None or self.recovery <= RECOVERY_GOAL
        return self.done == self.total and self.lost == self.doubled == 0 and recovered


SCENARIOS: list[Scenario] = []
BASELINES: dict[str, float] = {}


def baseline(work: str, run: Callable[[], object]) -> float:
    """Seconds `run` takes without faults, measured once per run of the suite."""
    if work not in BASELINES:
        start = time.monotonic()
        run()
        BASELINES[work] = time.monotonic() - start
    return BASELINES[work]


def time_to_progress(
    progress: Callable[[], int], since: float, *, total: int, timeout: float = 120
) -> float:
    """Seconds from `since` (a time.monotonic()) until `progress()` grows past its value now,
    or reaches `total`."""
    before = progress()

    def went_on() -> bool:
        now = progress()
        return now > before or now >= total

    wait_for(went_on, timeout=timeout, what="the work to go on", interval=0.02)
    return time.monotonic() - since


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
    size = "full" if FULL else "short (CHAOS_FULL=1 for the full run)"
    if SCENARIOS:
        _scenario_table(terminalreporter, size)
    if not FINDINGS:
        return
    terminalreporter.section(f"chaos: what was injected, and what was found [{size}]")
    terminalreporter.write_line("| check | injected | found | ok |")
    terminalreporter.write_line("|---|---|---|---|")
    for finding in FINDINGS:
        ok = "yes" if finding.ok else "NO"
        terminalreporter.write_line(
            f"| {finding.check} | {finding.injected} | {finding.found} | {ok} |"
        )


def _scenario_table(terminalreporter: pytest.TerminalReporter, size: str) -> None:
    terminalreporter.section(f"chaos: recovery at default settings [{size}]")
    terminalreporter.write_line(
        "| scenario | work | completion | seconds (fault-free) | recovery | lost | doubled | ok |"
    )
    terminalreporter.write_line("|---|---|---|---|---|---|---|---|")
    for row in SCENARIOS:
        base = f" ({row.baseline:.1f})" if row.baseline is not None else ""
        recovery = f"{row.recovery:.1f} s" if row.recovery is not None else "-"
        terminalreporter.write_line(
            f"| {row.name} | {row.work} | {100 * row.done / row.total:.1f}% "
            f"({row.done:,}/{row.total:,}) | {row.seconds:.1f}{base} | {recovery} | {row.lost} "
            f"| {row.doubled} | {'yes' if row.ok else 'NO'} |"
        )


@pytest.fixture
def scenario() -> Callable[[Scenario], None]:
    """Add a row to the recovery table; the test still asserts what the row says."""
    return SCENARIOS.append


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
    # Gone with the test: no later test's workers find them dead and rescue (its ticks would
    # be counted there).
    with db.session_scope() as session:
        nodes = [worker.name for worker in started]
        session.execute(delete(WorkerProcess).where(WorkerProcess.node.in_(nodes)))


def tick(entry: str) -> None:
    """What beat does at its minute: send the entry's periodic task."""
    scheduler = Scheduler(app=celery_app, lazy=False)
    scheduler.apply_entry(scheduler.schedule[entry])


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
