"""bubble_sync against the fake Bubble over HTTP: the trigger function, each operation, a
signup that is all or nothing, retries that create nothing twice, the shared rate limit."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from app import db
from app.bubble import queries, service
from app.fakes.bubble import FakeBubble
from app.models import ProcessingStatus, SyncOperation, SyncQueueItem
from tests.helpers import ApiClient

SIGNUP: dict[str, Any] = {"steps": [
    {"key": "user", "type": "user", "fields": {"email": "ada@example.com", "name": "Ada"}},
    {"key": "account", "type": "account", "fields": {"owner": "$user", "plan": "free"}},
    {"key": "listing", "type": "listing", "fields": {"account": "$account", "title": "Loft"}},
]}  # fmt: skip


def enqueue(
    session: Session, operation: str, payload: dict[str, Any], **values: Any
) -> SyncQueueItem:
    item = SyncQueueItem(table_name="users", record_id="r1", operation=SyncOperation(operation),
                         payload=payload, **values)  # fmt: skip
    session.add(item)
    session.commit()
    return item


def process(*, retries: bool = False) -> list[str]:
    """One tick of the processor (or the retry job), its batches pushed in this process."""
    with db.session_scope() as session:
        claimed = (queries.claim_retries(session, limit=10) if retries else
                   queries.claim_pending(session, limit=10, lease=timedelta(minutes=5)))  # fmt: skip
    return [service.process_item(row.id, row.processing_started_at) for row in claimed]


def reloaded(session: Session, item: SyncQueueItem) -> SyncQueueItem:
    session.expire_all()
    return session.get_one(SyncQueueItem, item.id)


def test_any_table_can_queue_its_changes_with_the_trigger_function(session: Session) -> None:
    session.execute(text("CREATE TEMP TABLE guests (id text PRIMARY KEY, name text)"))
    session.execute(
        text("""CREATE TRIGGER guests_to_bubble AFTER INSERT OR UPDATE ON guests
                            FOR EACH ROW EXECUTE FUNCTION queue_bubble_sync('guest')""")
    )
    session.execute(text("INSERT INTO guests VALUES ('g1', 'Ada')"))
    session.execute(text("UPDATE guests SET name = 'Ada L.'"))
    rows = session.execute(
        select(SyncQueueItem.table_name, SyncQueueItem.record_id, SyncQueueItem.operation,
               SyncQueueItem.payload).order_by(SyncQueueItem.created_at, SyncQueueItem.operation)
    ).all()  # fmt: skip
    session.rollback()
    assert [tuple(r) for r in rows] == [
        ("guests", "g1", SyncOperation.INSERT, {"id": "g1", "name": "Ada", "_type": "guest"}),
        ("guests", "g1", SyncOperation.UPDATE, {"id": "g1", "name": "Ada L.", "_type": "guest"}),
    ]


def test_insert_creates_the_record_and_keeps_its_id(
    session: Session, fake_bubble: FakeBubble
) -> None:
    item = enqueue(session, "INSERT", {"_type": "user", "name": "Ada"})
    assert process() == ["done"]
    [record] = fake_bubble.all("user")
    assert (record["name"], record["callsync_key"]) == ("Ada", str(item.id))
    done = reloaded(session, item)
    assert (done.status, done.bubble_id) == (ProcessingStatus.completed, record["_id"])


def test_update_modifies_the_record(session: Session, fake_bubble: FakeBubble) -> None:
    enqueue(session, "INSERT", {"_type": "user", "name": "Ada"})
    process()
    [record] = fake_bubble.all("user")
    enqueue(session, "UPDATE", {"_type": "user", "_id": record["_id"], "name": "Ada L."})
    assert process() == ["done"]
    assert fake_bubble.all("user")[0]["name"] == "Ada L."


def test_an_update_without_a_bubble_id_fails_with_the_reason(
    session: Session, fake_bubble: FakeBubble
) -> None:
    item = enqueue(session, "UPDATE", {"_type": "user", "name": "?"})
    assert process() == ["failed"]
    failed = reloaded(session, item)
    assert (failed.status, failed.retry_count) == (ProcessingStatus.failed, 1)
    assert failed.error_message == "an UPDATE needs the record's Bubble id in its payload (_id)"
    assert failed.next_retry_at is not None


def test_a_signup_creates_its_records_in_order_and_links_them(
    session: Session, fake_bubble: FakeBubble
) -> None:
    item = enqueue(session, "SIGNUP_ATOMIC", SIGNUP)
    assert process() == ["done"]
    [user], [account], [listing] = (fake_bubble.all(t) for t in ("user", "account", "listing"))
    assert (account["owner"], listing["account"]) == (user["_id"], account["_id"])
    done = reloaded(session, item)
    assert done.result == {
        "user": user["_id"],
        "account": account["_id"],
        "listing": listing["_id"],
    }
    assert done.bubble_id == user["_id"]


@pytest.mark.parametrize(("failing", "rolled_back"), [(1, 0), (2, 1), (3, 2)])
def test_a_signup_that_fails_at_any_step_leaves_nothing_behind(
    session: Session, fake_bubble: FakeBubble, failing: int, rolled_back: int
) -> None:
    item = enqueue(session, "SIGNUP_ATOMIC", SIGNUP)
    fake_bubble.fail_nth(failing, status=400)
    assert process() == ["failed"]
    assert [fake_bubble.all(t) for t in ("user", "account", "listing")] == [[], [], []]
    failed = reloaded(session, item)
    step = SIGNUP["steps"][failing - 1]["key"]
    assert failed.error_message is not None
    assert failed.error_message.startswith(f"signup step '{step}' failed: POST /api/1.1/obj/")
    assert failed.error_message.endswith(f"rolled back {rolled_back} record(s)")
    # The retry job pushes it again once its backoff has passed.
    session.execute(update(SyncQueueItem).values(next_retry_at=text("now()")))
    session.commit()
    assert process(retries=True) == ["done"]
    assert [len(fake_bubble.all(t)) for t in ("user", "account", "listing")] == [1, 1, 1]


def test_a_lost_run_is_finished_without_creating_anything_twice(
    session: Session, fake_bubble: FakeBubble
) -> None:
    item = enqueue(session, "SIGNUP_ATOMIC", SIGNUP)
    with db.session_scope() as own:  # a worker claims it...
        [row] = queries.claim_pending(own, limit=10, lease=timedelta(minutes=5))
    bubble = service.client()  # ...creates the first two records, and dies
    user = bubble.create(
        "user", {**SIGNUP["steps"][0]["fields"], "callsync_key": f"{item.id}:user"}
    )
    bubble.create("account", {"owner": user, "plan": "free", "callsync_key": f"{item.id}:account"})
    session.execute(update(SyncQueueItem).values(
        processing_started_at=row.processing_started_at - timedelta(minutes=10)))  # fmt: skip
    session.commit()
    assert process() == ["done"]  # the lease ran out: claimed again, records found by key
    assert [len(fake_bubble.all(t)) for t in ("user", "account", "listing")] == [1, 1, 1]
    assert reloaded(session, item).tries == 2


def test_429_backs_off_and_goes_on(session: Session, fake_bubble: FakeBubble) -> None:
    enqueue(session, "INSERT", {"_type": "user", "name": "Ada"})
    fake_bubble.throttle(2)
    assert process() == ["done"]
    assert len(fake_bubble.all("user")) == 1


def test_the_rate_limit_is_shared_by_every_process() -> None:
    """Two processes take 15 places each from one budget of 10 per second."""
    script = (
        "import sys, time\n"
        "from app.bubble.ratelimit import RateLimiter\n"
        "limiter = RateLimiter('callsync:bubble:rate:test', 10, window=1.0)\n"
        "for _ in range(15):\n"
        "    limiter.take()\n"
        "    print(time.time(), flush=True)\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
               for _ in range(2)]  # fmt: skip
    stamps = sorted(float(line) for w in workers for line in w.communicate(timeout=30)[0].split())
    assert len(stamps) == 30
    # Any 11 takes span the window (less a little: the stamps are printed just after).
    assert all(b - a >= 0.95 for a, b in zip(stamps, stamps[10:], strict=False))
    assert stamps[-1] - stamps[0] >= 2.0


def test_the_old_bubble_sync_function_runs_the_same_work(
    session: Session, api: ApiClient, fake_bubble: FakeBubble
) -> None:
    from app.config import get_settings

    token = get_settings().service_token
    assert token is not None
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
    enqueue(session, "INSERT", {"_type": "user", "name": "Ada"})
    body = {"action": "process_queue_data_api", "payload": {"limit": 10, "batch_size": 5}}
    assert api.post("/functions/v1/bubble_sync", json=body).status_code == 401
    answer = api.post("/functions/v1/bubble_sync", json=body, headers=headers)
    assert answer.status_code == 200
    assert answer.json() == {"action": "process_queue_data_api", "claimed": 1, "batches": 1}
    retry = api.post("/functions/v1/bubble_sync", json={"action": "retry_failed"}, headers=headers)
    assert retry.json() == {"action": "retry_failed", "claimed": 0, "batches": 0}
    bad = api.post("/functions/v1/bubble_sync", json={"action": "drop_tables"}, headers=headers)
    assert bad.status_code == 422
