"""bubble_sync end to end: a worker killed in the middle of a signup, then the retry."""

from __future__ import annotations

import json
import os

import pytest
from celery.beat import Scheduler
from sqlalchemy.orm import Session

from app.celery import app as celery_app
from app.fakes.bubble import FakeBubble
from app.models import ProcessingStatus, SyncOperation, SyncQueueItem
from tests.helpers import Worker, wait_for
from tests.integration.test_bubble_sync import SIGNUP

pytestmark = pytest.mark.e2e


def tick() -> None:
    scheduler = Scheduler(app=celery_app, lazy=False)
    scheduler.apply_entry(scheduler.schedule["bubble-sync-processor"])


def test_a_worker_killed_mid_signup_leaves_no_duplicate_and_no_orphan(
    session: Session, worker: Worker, fake_bubble: FakeBubble
) -> None:
    item = SyncQueueItem(
        table_name="users", record_id="u1", operation=SyncOperation.SIGNUP_ATOMIC, payload=SIGNUP
    )
    session.add(item)
    session.commit()
    fake_bubble.delay_nth(2, 3.0)  # the account's creation is under way when the worker dies
    tick()
    wait_for(lambda: len(fake_bubble.requests) >= 2, timeout=20, what="the second create")
    worker.kill()
    # The account was created, but the dead worker never heard its id: the retry finds it by
    # its natural key (one account per owner). Without one it would be created again (README).
    worker.env = {**os.environ, "BUBBLE_NATURAL_KEYS": json.dumps({"account": "owner"})}
    try:
        finish_the_signup(session, worker, fake_bubble, item)
    finally:
        worker.kill()
        worker.env = None
        worker.start()


def finish_the_signup(
    session: Session, worker: Worker, fake_bubble: FakeBubble, item: SyncQueueItem
) -> None:
    wait_for(lambda: fake_bubble.all("account"), timeout=10, what="the slow create to land")
    # Started again, the worker takes over at once what its dead predecessor held.
    worker.start()

    def done() -> bool:
        session.expire_all()
        return session.get_one(SyncQueueItem, item.id).status == ProcessingStatus.completed

    wait_for(done, timeout=20, what="the signup to complete")
    worker.wait_idle()
    assert [len(fake_bubble.all(t)) for t in ("user", "account", "listing")] == [1, 1, 1]
    [user], [account] = fake_bubble.all("user"), fake_bubble.all("account")
    assert account["owner"] == user["_id"]
