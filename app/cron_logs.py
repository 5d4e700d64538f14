"""cron_job_logs: one row per periodic run, and the schedule that `virsyn_cron_jobs` shows."""

from __future__ import annotations

import logging
import re
import runpy
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from app import db
from app.models import CronJobLog, CronSchedule

log = logging.getLogger(__name__)

SCHEDULE_FILE = Path(__file__).resolve().parent.parent / "celerybeat-schedule.py"


def run_logged(job_name: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `body` between a `running` row and its `completed` or `failed` outcome."""
    with db.session_scope() as session:
        log_id = session.execute(
            insert(CronJobLog).values(job_name=job_name).returning(CronJobLog.id)
        ).scalar_one()
    started = time.monotonic()
    try:
        result = body()
    except Exception as error:
        _finish(log_id, status="failed", error_message=f"{type(error).__name__}: {error}")
        log.exception("periodic %s failed after %.3fs", job_name, time.monotonic() - started)
        raise
    _finish(log_id, status="completed", result=result)
    log.info("periodic %s completed in %.3fs: %s", job_name, time.monotonic() - started, result)
    return result


def _finish(log_id: uuid.UUID, **values: Any) -> None:
    with db.session_scope() as session:
        session.execute(
            update(CronJobLog)
            .where(CronJobLog.id == log_id)
            .values(completed_at=func.now(), **values)
        )


def describe(schedule: object) -> str:
    """A crontab as pg_cron writes it (`* * * * *`); any other schedule as Celery prints it."""
    text = str(schedule)
    match = re.fullmatch(r"<crontab: (.+) \(m/h/(?:dM/MY/d|d/dM/MY)\)>", text)
    return match.group(1) if match else text


def schedule_rows(beat_schedule: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """cron_schedule's rows for a beat schedule."""
    return [
        {"job_name": name, "schedule": describe(entry["schedule"]), "task": entry["task"]}
        for name, entry in beat_schedule.items()
    ]


def publish_schedule(session: Session, beat_schedule: Mapping[str, Mapping[str, Any]]) -> None:
    """Mirror the beat schedule into cron_schedule, so SQL users see what runs and when."""
    rows = schedule_rows(beat_schedule)
    session.execute(delete(CronSchedule).where(CronSchedule.job_name.not_in(list(beat_schedule))))
    if rows:
        stmt = pg_insert(CronSchedule).values(rows)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[CronSchedule.job_name],
                set_={
                    "schedule": stmt.excluded.schedule,
                    "task": stmt.excluded.task,
                    "active": True,
                    "updated_at": func.now(),
                },
            )
        )


def seed_schedule(connection: Connection) -> None:
    """cron_schedule from the schedule file, where beat has not published it yet: what
    virsyn_cron_jobs lists from the moment the database is migrated."""
    schedule = runpy.run_path(str(SCHEDULE_FILE))["BEAT_SCHEDULE"]
    connection.execute(
        text(
            "INSERT INTO cron_schedule (job_name, schedule, task) "
            "VALUES (:job_name, :schedule, :task) ON CONFLICT (job_name) DO NOTHING"
        ),
        schedule_rows(schedule),
    )
