"""bubble_sync against the fake Bubble over HTTP: the trigger function and the field map, each
operation in order per record, a signup that is all or nothing, retries that create nothing
twice, Bubble's refusals, the shared rate limit."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from app import db
from app.bubble import queries, service
from app.config import get_settings
from app.fakes.bubble import FakeBubble
from app.models import ProcessingStatus, SyncOperation, SyncQueueItem
from tests.helpers import ApiClient, wait_for
from tests.integration.test_cli import callsync

Configure = Callable[..., None]

SIGNUP: dict[str, Any] = {
    "steps": [
        {"key": "user", "type": "user", "fields": {"email": "ada@example.com", "name": "Ada"}},
        {"key": "account", "type": "account", "fields": {"owner": "$user", "plan": "free"}},
        {"key": "listing", "type": "listing", "fields": {"account": "$account", "title": "Loft"}},
    ]
}


def enqueue(
    session: Session, operation: str, payload: dict[str, Any], **values: Any
) -> SyncQueueItem:
    item = SyncQueueItem(
        table_name="users",
        record_id="r1",
        operation=SyncOperation(operation),
        payload=payload,
        **values,
    )
    session.add(item)
    session.commit()
    return item


def process(*, retries: bool = False) -> list[str]:
    """One tick of the processor (or the retry job), its batches pushed in this process."""
    with db.session_scope() as session:
        claimed = (
            queries.claim_retries(session, limit=10)
            if retries
            else queries.claim_pending(session, limit=10, lease=timedelta(minutes=5))
        )
    if claimed.leased_at is None:
        return []
    return [service.process_item(item_id, claimed.leased_at) for item_id in claimed.ids]


def reloaded(session: Session, item: SyncQueueItem) -> SyncQueueItem:
    session.expire_all()
    return session.get_one(SyncQueueItem, item.id)


def assert_dead(item: SyncQueueItem, reason_end: str) -> None:
    """Failed with no retries left, at its first try, for this reason."""
    assert_dead_after(item, tries=1, reason_end=reason_end)


def assert_dead_after(item: SyncQueueItem, *, tries: int, reason_end: str) -> None:
    assert (item.status, item.retry_count, item.tries) == (ProcessingStatus.failed, 3, tries)
    assert item.error_message is not None
    assert item.error_message.endswith(reason_end), item.error_message
    assert item.next_retry_at is None


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """Set environment variables for this test, as a user would before starting callsync."""

    def setenv(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        service.client.cache_clear()

    yield setenv
    monkeypatch.undo()
    get_settings.cache_clear()
    service.client.cache_clear()


@pytest.fixture
def guests(session: Session, configure: Configure) -> Iterator[str]:
    """A table of the product's, queuing its changes for Bubble's "guest" type (GUEST_MAP)."""
    configure(BUBBLE_FIELD_MAP=json.dumps(GUEST_MAP))
    session.execute(
        text("""CREATE TABLE guests (id text PRIMARY KEY, full_name text,
                            email text, visits int, bubble_uid text, created_at timestamptz
                            DEFAULT now())""")
    )
    session.execute(
        text("""CREATE TRIGGER guests_to_bubble AFTER INSERT OR UPDATE OR DELETE
                            ON guests FOR EACH ROW EXECUTE FUNCTION queue_bubble_sync('guest')""")
    )
    session.commit()
    yield "guests"
    session.rollback()
    session.execute(text("DROP TABLE guests"))
    session.commit()


GUEST_MAP = {"guest": {"full_name": "name", "email": "email", "visits": "visits"}}


def run(session: Session, sql: str, **params: Any) -> None:
    session.execute(text(sql), params)
    session.commit()


def add_and_rename_ada(session: Session) -> None:
    run(session, "INSERT INTO guests (id, full_name) VALUES ('g1', 'Ada')")
    run(session, "UPDATE guests SET full_name = 'Ada L.'")


def statuses(session: Session) -> list[tuple[SyncOperation, ProcessingStatus]]:
    session.expire_all()
    query = select(SyncQueueItem).order_by(SyncQueueItem.seq)
    return [(item.operation, item.status) for item in session.scalars(query)]


def test_any_table_can_queue_its_changes_with_the_trigger_function(session: Session) -> None:
    session.execute(text("CREATE TEMP TABLE guests (id text PRIMARY KEY, name text)"))
    session.execute(
        text("""CREATE TRIGGER guests_to_bubble AFTER INSERT OR UPDATE ON guests
                            FOR EACH ROW EXECUTE FUNCTION queue_bubble_sync('guest')""")
    )
    session.execute(text("INSERT INTO guests VALUES ('g1', 'Ada')"))
    session.execute(text("UPDATE guests SET name = 'Ada L.'"))
    rows = session.execute(
        select(
            SyncQueueItem.table_name,
            SyncQueueItem.record_id,
            SyncQueueItem.operation,
            SyncQueueItem.payload,
        ).order_by(SyncQueueItem.created_at, SyncQueueItem.operation)
    ).all()
    session.rollback()
    assert [tuple(r) for r in rows] == [
        ("guests", "g1", SyncOperation.INSERT, {"id": "g1", "name": "Ada", "_type": "guest"}),
        ("guests", "g1", SyncOperation.UPDATE, {"id": "g1", "name": "Ada L.", "_type": "guest"}),
    ]


def test_insert_creates_the_record_and_keeps_its_id(
    session: Session, fake_bubble: FakeBubble
) -> None:
    item = enqueue(session, "INSERT", {"_type": "user", "id": "r1", "name": "Ada"})
    assert process() == ["done"]
    [record] = fake_bubble.all("user")
    # Only the row's own fields: no id, no key of ours the app's type does not have.
    assert set(record) == {"name", "_id", "Created Date", "Modified Date"}
    done = reloaded(session, item)
    assert (done.status, done.bubble_id) == (ProcessingStatus.completed, record["_id"])


def test_the_field_map_sends_the_mapped_columns_under_their_bubble_keys(
    session: Session, fake_bubble: FakeBubble, guests: str
) -> None:
    run(session, "INSERT INTO guests (id, full_name, email, visits) VALUES ('g1', 'Ada', 'a@x', 2)")
    assert process() == ["done"]
    [record] = fake_bubble.all("guest")
    assert {k: v for k, v in record.items() if k in ("name", "email", "visits")} == {
        "name": "Ada",
        "email": "a@x",
        "visits": 2,
    }
    assert not {"id", "full_name", "created_at", "bubble_uid", "_type"} & set(record)


def test_a_trigger_queued_update_and_delete_find_the_record_the_insert_created(
    session: Session, fake_bubble: FakeBubble, guests: str
) -> None:
    add_and_rename_ada(session)
    # One claim takes the INSERT alone; the UPDATE follows it once it is done.
    assert process() == ["done"]
    [record] = fake_bubble.all("guest")
    assert record["name"] == "Ada L."
    run(session, "DELETE FROM guests")
    assert process() == ["done"]
    assert fake_bubble.all("guest") == []
    calls = [(method, path) for _, method, path in fake_bubble.requests]
    at = f"/api/1.1/obj/guest/{record['_id']}"
    assert calls == [("POST", "/api/1.1/obj/guest"), ("PATCH", at), ("DELETE", at)]
    assert statuses(session) == [
        (SyncOperation.INSERT, ProcessingStatus.completed),
        (SyncOperation.UPDATE, ProcessingStatus.completed),
        (SyncOperation.DELETE, ProcessingStatus.completed),
    ]
    ids = session.scalars(select(SyncQueueItem.bubble_id).order_by(SyncQueueItem.seq)).all()
    assert ids == [record["_id"]] * 3


def test_an_update_waits_for_its_insert_to_be_pushed(
    session: Session, fake_bubble: FakeBubble, guests: str
) -> None:
    add_and_rename_ada(session)
    for n in range(1, 5):  # every attempt of the INSERT's request
        fake_bubble.fail_nth(n, status=503)
    assert process() == ["failed"]
    assert statuses(session) == [
        (SyncOperation.INSERT, ProcessingStatus.failed),
        (SyncOperation.UPDATE, ProcessingStatus.pending),
    ]
    assert process() == []  # the UPDATE is not taken while its INSERT may still be retried
    session.execute(update(SyncQueueItem).values(next_retry_at=text("now()")))
    session.commit()
    assert process(retries=True) == ["done"]  # the INSERT, and the UPDATE after it
    assert fake_bubble.all("guest")[0]["name"] == "Ada L."
    assert [status for _, status in statuses(session)] == [ProcessingStatus.completed] * 2


def test_a_column_holding_the_bubble_id_finds_the_record(
    session: Session, fake_bubble: FakeBubble, guests: str, configure: Configure
) -> None:
    configure(BUBBLE_FIELD_MAP=json.dumps({"guest": {**GUEST_MAP["guest"], "bubble_uid": "_id"}}))
    record_id = service.client().create("guest", {"name": "Ada"})
    session.execute(text("ALTER TABLE guests DISABLE TRIGGER guests_to_bubble"))
    run(
        session,
        "INSERT INTO guests (id, full_name, bubble_uid) VALUES ('g1', 'Ada', :record_id)",
        record_id=record_id,
    )
    session.execute(text("ALTER TABLE guests ENABLE TRIGGER guests_to_bubble"))
    run(session, "UPDATE guests SET full_name = 'Ada L.'")
    assert process() == ["done"]
    [record] = fake_bubble.all("guest")
    assert (record["_id"], record["name"]) == (record_id, "Ada L.")
    assert "bubble_uid" not in record


def test_a_natural_key_finds_a_record_no_insert_of_ours_created(
    session: Session, fake_bubble: FakeBubble, configure: Configure
) -> None:
    configure(BUBBLE_NATURAL_KEYS=json.dumps({"user": "email"}))
    record_id = service.client().create("user", {"email": "ada@example.com", "name": "Ada"})
    item = enqueue(session, "UPDATE", {"_type": "user", "email": "ada@example.com", "name": "A."})
    assert process() == ["done"]
    assert fake_bubble.all("user")[0]["name"] == "A."
    assert reloaded(session, item).bubble_id == record_id


def test_an_update_of_a_record_nothing_can_find_is_dead(
    session: Session, fake_bubble: FakeBubble
) -> None:
    item = enqueue(session, "UPDATE", {"_type": "user", "id": "r1", "name": "?"})
    assert process() == ["failed"]
    assert_dead(
        reloaded(session, item), "its row has no '_id' column and 'user' has no natural key"
    )


def test_a_delete_of_a_record_already_gone_is_done(
    session: Session, fake_bubble: FakeBubble
) -> None:
    enqueue(session, "INSERT", {"_type": "user", "name": "Ada"})
    process()
    [record] = fake_bubble.all("user")
    service.client().delete("user", record["_id"])
    item = enqueue(session, "DELETE", {"_type": "user", "name": "Ada"})
    assert process() == ["done"]
    assert reloaded(session, item).status == ProcessingStatus.completed


def test_update_modifies_the_record(session: Session, fake_bubble: FakeBubble) -> None:
    enqueue(session, "INSERT", {"_type": "user", "name": "Ada"})
    process()
    [record] = fake_bubble.all("user")
    enqueue(session, "UPDATE", {"_type": "user", "_id": record["_id"], "name": "Ada L."})
    assert process() == ["done"]
    assert fake_bubble.all("user")[0]["name"] == "Ada L."


def test_a_field_bubble_does_not_know_is_dead_at_once_with_bubbles_message(
    session: Session, fake_bubble: FakeBubble
) -> None:
    item = enqueue(session, "INSERT", {"_type": "user", "name": "Ada", "nickname": "A"})
    assert process() == ["failed"]
    assert_dead(reloaded(session, item), ": HTTP 400 Unrecognized field: nickname")
    session.execute(update(SyncQueueItem).values(next_retry_at=text("now()")))
    session.commit()
    assert process(retries=True) == []  # no retry: the app would refuse it again
    assert fake_bubble.all("user") == []


def test_a_column_the_map_names_but_the_row_lacks_is_dead(
    session: Session, fake_bubble: FakeBubble, configure: Configure
) -> None:
    configure(BUBBLE_FIELD_MAP=json.dumps(GUEST_MAP))
    item = enqueue(session, "INSERT", {"_type": "guest", "full_name": "Ada", "email": "a@x"})
    assert process() == ["failed"]
    assert_dead(
        reloaded(session, item),
        "maps column 'visits' of 'guest', which the queued row does not have",
    )


def test_a_type_not_in_the_data_api_is_retried(session: Session, fake_bubble: FakeBubble) -> None:
    """The app's settings, which its owner may fix (api-facts §4.3)."""
    item = enqueue(session, "INSERT", {"_type": "room"})
    assert process() == ["failed"]
    failed = reloaded(session, item)
    assert (failed.status, failed.retry_count) == (ProcessingStatus.failed, 1)
    assert failed.error_message is not None
    assert failed.error_message.endswith("HTTP 404 Type not found: room")
    assert failed.next_retry_at is not None


def test_a_refused_token_waits_for_another_without_counting_a_try(
    session: Session, fake_bubble: FakeBubble, configure: Configure
) -> None:
    configure(BUBBLE_API_TOKEN="not-the-token")
    item = enqueue(session, "INSERT", {"_type": "user"})
    assert process() == ["needs_credentials"]
    waiting = reloaded(session, item)
    assert (waiting.status, waiting.retry_count) == (ProcessingStatus.pending, 0)
    assert waiting.error_message is not None
    assert waiting.error_message.endswith("HTTP 401 Invalid or missing API token")


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
def test_a_signup_bubble_refuses_at_any_step_leaves_nothing_behind_and_is_dead(
    session: Session, fake_bubble: FakeBubble, failing: int, rolled_back: int
) -> None:
    item = enqueue(session, "SIGNUP_ATOMIC", SIGNUP)
    fake_bubble.fail_nth(failing, status=400)
    assert process() == ["failed"]
    assert [fake_bubble.all(t) for t in ("user", "account", "listing")] == [[], [], []]
    step = SIGNUP["steps"][failing - 1]["key"]
    failed = reloaded(session, item)
    assert_dead(
        failed, f"Injected failure of request {failing}; rolled back {rolled_back} record(s)"
    )
    assert failed.error_message is not None
    assert failed.error_message.startswith(f"signup step '{step}' failed: POST /api/1.1/obj/")


@pytest.mark.parametrize("failing", [1, 2, 3])
def test_a_signup_that_fails_for_a_while_is_rolled_back_then_retried(
    session: Session, fake_bubble: FakeBubble, failing: int
) -> None:
    item = enqueue(session, "SIGNUP_ATOMIC", SIGNUP)
    for n in range(failing, failing + 4):  # every attempt of the step's request
        fake_bubble.fail_nth(n, status=503)
    assert process() == ["failed"]
    assert [fake_bubble.all(t) for t in ("user", "account", "listing")] == [[], [], []]
    assert reloaded(session, item).result is None
    session.execute(update(SyncQueueItem).values(next_retry_at=text("now()")))
    session.commit()
    assert process(retries=True) == ["done"]
    assert [len(fake_bubble.all(t)) for t in ("user", "account", "listing")] == [1, 1, 1]


def lose_a_run_after_two_creates(session: Session, item: SyncQueueItem, *, kept: bool) -> None:
    """A worker claims the signup, creates its user (keeping its id, as a worker does when
    `kept`) and its account, and dies before keeping the account's id; its lease runs out."""
    with db.session_scope() as own:
        claimed = queries.claim_pending(own, limit=10, lease=timedelta(minutes=5))
    assert claimed.ids == [item.id]
    assert claimed.leased_at is not None
    field = get_settings().bubble_idempotency_field
    bubble = service.client()

    def create(type_name: str, fields: dict[str, Any], step: str) -> str:
        return bubble.create(type_name, {**fields, field: f"{item.id}:{step}"} if field else fields)

    user = create("user", SIGNUP["steps"][0]["fields"], "user")
    if kept:
        with db.session_scope() as own:
            leased = queries.get_leased(own, item.id, claimed.leased_at)
            assert leased is not None
            queries.record_created(own, leased, bubble_id=None, result={"user": user})
    create("account", {"owner": user, "plan": "free"}, "account")
    session.execute(
        update(SyncQueueItem).values(
            processing_started_at=claimed.leased_at - timedelta(minutes=10)
        )
    )
    session.commit()


def test_a_lost_run_reuses_the_ids_it_kept_and_can_only_repeat_the_last_create(
    session: Session, fake_bubble: FakeBubble
) -> None:
    """The guarantee left without BUBBLE_IDEMPOTENCY_FIELD or a natural key (README)."""
    item = enqueue(session, "SIGNUP_ATOMIC", SIGNUP)
    lose_a_run_after_two_creates(session, item, kept=True)
    assert process() == ["done"]  # claimed again once the lease ran out
    assert [len(fake_bubble.all(t)) for t in ("user", "account", "listing")] == [1, 2, 1]
    assert reloaded(session, item).tries == 2


@pytest.mark.parametrize(
    "setting",
    [
        {"BUBBLE_NATURAL_KEYS": json.dumps({"user": "email", "account": "owner"})},
        {"BUBBLE_IDEMPOTENCY_FIELD": "callsync_key"},
    ],
)
def test_a_lost_run_is_finished_without_creating_anything_twice(
    session: Session, fake_bubble: FakeBubble, configure: Configure, setting: dict[str, str]
) -> None:
    configure(**setting)
    for type_name in ("user", "account", "listing"):
        fake_bubble.declare(type_name, {"callsync_key": "text"})
    item = enqueue(session, "SIGNUP_ATOMIC", SIGNUP)
    lose_a_run_after_two_creates(session, item, kept=False)
    assert process() == ["done"]  # the lease ran out: claimed again, records found
    assert [len(fake_bubble.all(t)) for t in ("user", "account", "listing")] == [1, 1, 1]
    assert reloaded(session, item).tries == 2


def test_the_idempotency_field_is_refused_by_an_app_whose_types_lack_it(
    session: Session, fake_bubble: FakeBubble, configure: Configure
) -> None:
    configure(BUBBLE_IDEMPOTENCY_FIELD="callsync_key")
    item = enqueue(session, "INSERT", {"_type": "user", "name": "Ada"})
    assert process() == ["failed"]
    assert_dead(reloaded(session, item), "Unrecognized field: callsync_key")


def lose_the_run(session: Session) -> list[uuid.UUID]:
    """The processor claims; the worker dies mid-push, and its lease runs out."""
    with db.session_scope() as own:
        claimed = queries.claim_pending(own, limit=10, lease=timedelta(minutes=5))
    session.execute(
        update(SyncQueueItem).values(processing_started_at=text("now() - interval '10 minutes'"))
    )
    session.commit()
    return claimed.ids


def test_lost_runs_are_counted_until_the_item_is_dead_then_replay(
    session: Session, fake_bubble: FakeBubble
) -> None:
    item = enqueue(session, "INSERT", {"_type": "user", "name": "Ada"})
    assert [lose_the_run(session) for _ in range(3)] == [[item.id]] * 3
    lost = reloaded(session, item)
    assert (lost.status, lost.retry_count, lost.lost_runs, lost.tries) == (
        ProcessingStatus.processing,
        0,
        2,
        3,
    )
    assert lose_the_run(session) == []  # the third lost run was its last: dead, not re-run
    assert_dead_after(reloaded(session, item), tries=3, reason_end="worker lost 3 times")
    assert process() == []
    assert process(retries=True) == []
    assert "give exactly one of --all or --id" in callsync("bubble", "replay").stderr
    other = callsync("bubble", "replay", "--id", str(uuid.uuid4()))
    assert "0 dead item(s) queued again" in other.stdout
    result = callsync("bubble", "replay", "--all")
    assert result.returncode == 0, result.stderr
    assert "1 dead item(s) queued again" in result.stdout
    process()  # or the session's worker, if one runs, on the replay's processor run
    wait_for(lambda: reloaded(session, item).status == ProcessingStatus.completed, what="replay")
    assert len(fake_bubble.all("user")) == 1


def test_an_insert_whose_id_was_kept_is_not_created_again(
    session: Session, fake_bubble: FakeBubble
) -> None:
    item = enqueue(session, "INSERT", {"_type": "user", "name": "Ada"})
    with db.session_scope() as own:
        claimed = queries.claim_pending(own, limit=10, lease=timedelta(minutes=5))
    assert claimed.ids == [item.id]
    assert claimed.leased_at is not None
    record_id = service.client().create("user", {"name": "Ada"})
    with db.session_scope() as own:
        leased = queries.get_leased(own, item.id, claimed.leased_at)
        assert leased is not None
        queries.record_created(own, leased, bubble_id=record_id, result=None)
    session.execute(
        update(SyncQueueItem).values(
            processing_started_at=claimed.leased_at - timedelta(minutes=10)
        )
    )
    session.commit()
    assert process() == ["done"]
    assert len(fake_bubble.all("user")) == 1
    assert reloaded(session, item).bubble_id == record_id


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            '{"user": {"email": "email", "mail": "email"}}',
            "'user' sends 'email' from more than one column",
        ),
        ('{"Rental Unit": {"name": "name"}}', "'Rental Unit' is not a type's URL name"),
        ("/nonexistent/map.json", "cannot read '/nonexistent/map.json'"),
        ('{"user": ["email"]}', "BUBBLE_FIELD_MAP.USER: Input should be a valid dictionary"),
    ],
)
def test_an_invalid_field_map_stops_start_up_with_one_line(value: str, message: str) -> None:
    result = callsync(
        "token", "--user", str(uuid.uuid4()), env={**os.environ, "BUBBLE_FIELD_MAP": value}
    )
    assert result.returncode == 2
    assert result.stderr.startswith("callsync: invalid configuration: BUBBLE_FIELD_MAP")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_field_map_may_be_a_file(tmp_path: Any, configure: Configure) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps(GUEST_MAP))
    configure(BUBBLE_FIELD_MAP=str(path))
    assert get_settings().bubble_field_map == GUEST_MAP


def test_429_backs_off_and_goes_on(session: Session, fake_bubble: FakeBubble) -> None:
    enqueue(session, "INSERT", {"_type": "user", "name": "Ada"})
    fake_bubble.throttle(2)
    assert process() == ["done"]
    assert len(fake_bubble.all("user")) == 1


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
