"""The Salesforce sync end to end: beat's tick, a real worker, the fake org over HTTP."""

from __future__ import annotations

import pytest
from celery.beat import Scheduler
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.celery import app as celery_app
from app.fakes.salesforce import FakeSalesforce
from app.models import Lead, SyncLog
from tests.helpers import Worker, wait_for
from tests.salesforce import connect, contacts

pytestmark = pytest.mark.e2e


def test_beats_tick_syncs_every_enabled_integration(
    session: Session,
    worker: Worker,
    fake_salesforce: FakeSalesforce,
) -> None:
    connect(session, fake_salesforce)
    contacts(fake_salesforce, 3)
    scheduler = Scheduler(app=celery_app, lazy=False)
    scheduler.apply_entry(scheduler.schedule["sync-salesforce-leads"])

    def logged() -> SyncLog | None:
        session.expire_all()
        return session.scalars(select(SyncLog)).one_or_none()

    log = wait_for(logged, timeout=20, what="the run's sync_logs row")
    assert (log.status, log.records_created) == ("success", 3)
    assert session.scalar(select(func.count()).select_from(Lead)) == 3
    worker.wait_idle()
