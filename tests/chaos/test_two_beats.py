"""Two beat processes at once (a deploy that left the old one running): both tick, both ticks
are logged, and no item is processed twice."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import db
from app.fakes.ultravox import FakeUltravox
from app.models import CronJobLog, EnrichmentItem, HistoricalSyncJob, SyncJobStatus, WebhookEvent
from tests.chaos.conftest import CHAOS_ENV, count, queue_events, scalar
from tests.chaos.test_restarts import COMPLETED
from tests.helpers import ROOT, Worker, make_agency, wait_for

EVENTS = 2_000


@contextmanager
def beat(directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery beat` with a schedule file and pid file of its own."""
    directory.mkdir()
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "app",
        "beat",
        "-l",
        "INFO",
        "-s",
        str(directory / "schedule"),
        f"--pidfile={directory / 'beat.pid'}",
    ]
    with (directory / "beat.log").open("w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=CHAOS_ENV, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=20)


def logged_ticks(job_name: str) -> list[CronJobLog]:
    with db.session_scope() as session:
        runs = list(
            session.scalars(
                select(CronJobLog).where(
                    CronJobLog.job_name == job_name, CronJobLog.status == "completed"
                )
            )
        )
        session.expunge_all()
        return runs


@pytest.mark.timeout(300)
def test_two_beats_tick_twice_and_nothing_is_processed_twice(
    session: Session,
    tmp_path: Path,
    chaos_worker: Callable[..., Worker],
    fake_ultravox: FakeUltravox,
    report: Callable[..., None],
) -> None:
    agency = make_agency(session, webhook_secret="whsec_beats")
    calls = queue_events(agency, seed=31, events=EVENTS)
    job = HistoricalSyncJob(
        agency_id=agency, date_to=datetime(2030, 1, 1, tzinfo=UTC), max_calls=1000
    )
    session.add(job)
    session.commit()
    worker = chaos_worker("default,webhooks,sync")
    if datetime.now(UTC).second > 50:  # both must start before the same minute's tick
        time.sleep(61 - datetime.now(UTC).second)
    with ExitStack() as beats:
        for name in ("beat-a", "beat-b"):
            beats.enter_context(beat(tmp_path / name))
        wait_for(
            lambda: (
                len(logged_ticks("process-historical-sync")) >= 2
                and len(logged_ticks("process-webhook-queue")) >= 2
            ),
            timeout=90,
            what="both beats' ticks",
        )
    wait_for(lambda: count(WebhookEvent, COMPLETED) == EVENTS, timeout=60, what="every event")
    wait_for(
        lambda: (
            scalar(select(HistoricalSyncJob.status).where(HistoricalSyncJob.id == job.id))
            == SyncJobStatus.completed
        ),
        timeout=60,
        what="the sync job",
    )
    worker.wait_idle()

    sync_ticks = logged_ticks("process-historical-sync")
    claimed = sorted(int((run.result or {}).get("processed", 0)) for run in sync_ticks)
    rerun = count(WebhookEvent, WebhookEvent.attempts > 0)
    session.expire_all()
    final = session.get_one(HistoricalSyncJob, job.id)
    transcripts = count(EnrichmentItem)  # one per ended call, from webhooks and from the sync
    pages = [q.get("cursor") for _, path, q in fake_ultravox.requests_seen if path == "/api/calls"]
    report(
        "two beat processes",
        "two `celery beat` processes ticking the same minute",
        f"cron_job_logs: {len(sync_ticks)} process-historical-sync ticks (claimed {claimed} "
        f"jobs), {len(logged_ticks('process-webhook-queue'))} process-webhook-queue ticks; "
        f"{EVENTS:,} events completed, {rerun} run twice; {transcripts:,} transcript items for "
        f"{calls + final.imported_calls:,} ended calls; {len(pages)} pages fetched, {len(pages) - len(set(pages))} twice",
        rerun == 0
        and transcripts == calls + final.imported_calls
        and len(pages) == len(set(pages)),
    )
    assert claimed == [0, 1]  # one beat's claim took the job; the other found it taken
    assert rerun == 0
    assert transcripts == calls + final.imported_calls
    assert len(pages) == len(set(pages))
    assert final.processed_calls == final.total_calls == len(fake_ultravox.calls)
