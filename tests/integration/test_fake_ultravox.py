"""The fake Ultravox over real loopback HTTP: auth, pagination, filters, faults, webhooks."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from fastapi import FastAPI, Request, Response

from app.fakes import server
from app.fakes.ultravox import (
    BAD_RECORDS,
    FakeUltravox,
    generate_calls,
    generate_messages,
    send_webhook,
    sign,
)

KEY = "Zk9Ht7Lm.wX7pN9fM3kLj6tRq2bGhA8yE5cZvD4sT"
CALLS = generate_calls(237)


# The project conftest's autouse fixtures need PostgreSQL and Redis; this fake needs neither.
@pytest.fixture
def clean_tables() -> None:
    return None


@pytest.fixture
def empty_broker() -> None:
    return None


@pytest.fixture(scope="session")
def database() -> None:
    return None


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeUltravox, str]]:
    fake = FakeUltravox(KEY, CALLS)
    with fake.serve() as running:
        yield fake, running.url


@pytest.fixture
def fake(served: tuple[FakeUltravox, str]) -> Iterator[FakeUltravox]:
    served[0].reset()
    yield served[0]
    served[0].reset()


@pytest.fixture
def url(served: tuple[FakeUltravox, str], fake: FakeUltravox) -> str:
    return served[1]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["X-API-Key"] = KEY
        yield session


def walk(http: requests.Session, first: str, **params: Any) -> list[dict[str, Any]]:
    """Every page, following `next` verbatim from the first request."""
    pages = [http.get(first, params=params, timeout=5).json()]
    while pages[-1]["next"]:
        pages.append(http.get(pages[-1]["next"], timeout=5).json())
    return pages


def ids(calls: list[dict[str, Any]]) -> list[str]:
    return [call["callId"] for call in calls]


def test_a_missing_or_wrong_key_gets_401(url: str, fake: FakeUltravox) -> None:
    missing = requests.get(f"{url}/api/calls", timeout=5)
    wrong = requests.get(f"{url}/api/calls", headers={"X-API-Key": "nope"}, timeout=5)

    assert missing.status_code == wrong.status_code == 401
    assert missing.json() == {"detail": "Authentication credentials were not provided."}
    assert set(wrong.json()) == {"detail"}
    assert [path for _, path, _ in fake.requests_seen] == ["/api/calls", "/api/calls"]


def test_following_next_returns_every_call_once_in_order(url: str, http: requests.Session) -> None:
    pages = walk(http, f"{url}/api/calls", pageSize=50, sort="created")

    assert [len(page["results"]) for page in pages] == [50, 50, 50, 50, 37]
    assert ids([call for page in pages for call in page["results"]]) == ids(CALLS)
    assert {page["total"] for page in pages} == {237}
    assert pages[0]["previous"] is None
    assert pages[-1]["next"] is None


def test_next_is_absolute_and_keeps_the_other_parameters(url: str, http: requests.Session) -> None:
    params: dict[str, str] = {"pageSize": "20", "sort": "created", "fromDate": CALLS[5]["created"]}
    params["toDate"] = CALLS[100]["created"]
    page = http.get(f"{url}/api/calls", params=params, timeout=5).json()

    link = urlparse(page["next"])
    query = {name: values[0] for name, values in parse_qs(link.query).items()}
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{url}/api/calls"
    assert query.pop("cursor")
    assert query == params


@pytest.mark.parametrize("sort", ["created", "-created"])
def test_previous_walks_back_over_the_same_pages(
    url: str, http: requests.Session, sort: str
) -> None:
    forward = walk(http, f"{url}/api/calls", pageSize="60", sort=sort)
    backward = [forward[-1]]
    while backward[-1]["previous"]:
        backward.append(http.get(backward[-1]["previous"], timeout=5).json())

    assert [ids(page["results"]) for page in backward] == [
        ids(page["results"]) for page in forward[::-1]
    ]


def test_date_filters_are_inclusive_at_both_ends(url: str, http: requests.Session) -> None:
    params = {"fromDate": CALLS[10]["created"], "toDate": CALLS[20]["created"], "sort": "created"}
    page = http.get(f"{url}/api/calls", params=params, timeout=5).json()

    assert ids(page["results"]) == ids(CALLS[10:21])
    assert page["total"] == 11
    assert page["next"] is None


def test_a_bare_date_covers_the_whole_day(url: str, http: requests.Session) -> None:
    that_day = {"fromDate": "2026-01-01", "toDate": "2026-01-01"}
    next_day = {"fromDate": "2026-01-02"}

    assert http.get(f"{url}/api/calls", params=that_day, timeout=5).json()["total"] == 237
    assert http.get(f"{url}/api/calls", params=next_day, timeout=5).json()["total"] == 0


def test_minus_created_pages_newest_first(url: str, http: requests.Session) -> None:
    pages = walk(http, f"{url}/api/calls", pageSize=100, sort="-created")

    assert ids([call for page in pages for call in page["results"]]) == ids(CALLS[::-1])
    assert http.get(f"{url}/api/calls", timeout=5).json()["results"][0] == CALLS[-1]


def test_invalid_parameters_are_refused_as_drf_does(url: str, http: requests.Session) -> None:
    def get(**params: str) -> requests.Response:
        return http.get(f"{url}/api/calls", params=params, timeout=5)

    assert get(sort="duration").status_code == 400
    assert list(get(fromDate="yesterday").json()) == ["fromDate"]
    assert get(cursor="not-a-cursor").json() == {"detail": "Invalid cursor"}
    assert get(cursor="not-a-cursor").status_code == 404
    assert len(get(pageSize="0").json()["results"]) == 100  # the default
    assert len(get(pageSize="abc").json()["results"]) == 100


def test_page_size_is_clamped_to_the_maximum(url: str, fake: FakeUltravox) -> None:
    small = FakeUltravox(KEY, CALLS, max_page_size=40)
    with small.serve() as running:
        page = requests.get(
            f"{running.url}/api/calls",
            params={"pageSize": 500},
            headers={"X-API-Key": KEY},
            timeout=5,
        ).json()

    assert len(page["results"]) == 40


def test_429_carries_retry_after_then_the_page_comes(
    url: str, http: requests.Session, fake: FakeUltravox
) -> None:
    fake.inject("429", retry_after=7)

    refused = http.get(f"{url}/api/calls", timeout=5)
    answered = http.get(f"{url}/api/calls", timeout=5)

    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "7"
    assert "throttled" in refused.json()["detail"]
    assert answered.status_code == 200


def test_injected_5xx_is_served_times_times(
    url: str, http: requests.Session, fake: FakeUltravox
) -> None:
    fake.inject("503", times=2, retry_after=1)

    statuses = [http.get(f"{url}/api/calls", timeout=5).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]


def test_faults_are_served_in_fifo_order(
    url: str, http: requests.Session, fake: FakeUltravox
) -> None:
    fake.inject("500")
    fake.inject("429")
    fake.inject("502", status=504)

    statuses = [http.get(f"{url}/api/calls", timeout=5).status_code for _ in range(4)]

    assert statuses == [500, 429, 504, 200]


def test_a_slow_answer_leaves_the_server_responsive(
    url: str, http: requests.Session, fake: FakeUltravox
) -> None:
    fake.inject("slow", seconds=0.4)
    elapsed: list[float] = []

    def slow_request() -> None:
        began = time.monotonic()
        assert requests.get(f"{url}/api/calls", headers={"X-API-Key": KEY}, timeout=5).ok
        elapsed.append(time.monotonic() - began)

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.05)
    began = time.monotonic()
    assert http.get(f"{url}/api/calls/{CALLS[0]['callId']}", timeout=5).ok
    quick = time.monotonic() - began
    thread.join()

    assert elapsed[0] >= 0.4
    assert quick < 0.3


@pytest.mark.parametrize("variant", ["results_not_list", "missing_call_id"])
def test_a_malformed_page_is_a_200_that_breaks_the_schema(
    url: str, http: requests.Session, fake: FakeUltravox, variant: str
) -> None:
    fake.inject("malformed", variant=variant)

    response = http.get(f"{url}/api/calls", timeout=5)

    assert response.status_code == 200
    results = response.json()["results"]
    assert not isinstance(results, list) or "callId" not in results[0]


@pytest.mark.parametrize("variant", sorted(BAD_RECORDS))
def test_a_bad_record_spoils_one_call_of_a_good_page(
    url: str, http: requests.Session, fake: FakeUltravox, variant: str
) -> None:
    params: dict[str, str | int] = {"pageSize": 50, "sort": "created"}
    good = http.get(f"{url}/api/calls", params=params, timeout=5).json()
    fake.inject("malformed", variant=variant, at=3)

    page = http.get(f"{url}/api/calls", params=params, timeout=5).json()

    assert {k: v for k, v in page.items() if k != "results"} == {
        k: v for k, v in good.items() if k != "results"
    }
    assert len(page["results"]) == 50
    assert page["results"][3] != good["results"][3]
    assert page["results"][:3] + page["results"][4:] == good["results"][:3] + good["results"][4:]


def test_a_bad_record_is_only_for_the_calls_list(fake: FakeUltravox) -> None:
    with pytest.raises(ValueError, match="calls endpoint"):
        fake.inject("malformed", variant="missing_call_id", endpoint="messages")


def test_a_malformed_page_can_be_no_json_at_all(
    url: str, http: requests.Session, fake: FakeUltravox
) -> None:
    fake.inject("malformed", variant="not_json")

    response = http.get(f"{url}/api/calls", timeout=5)

    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_a_fault_can_target_one_page(url: str, http: requests.Session, fake: FakeUltravox) -> None:
    first = http.get(f"{url}/api/calls", params={"pageSize": 50}, timeout=5).json()
    cursor = parse_qs(urlparse(first["next"]).query)["cursor"][0]
    fake.inject("500", on_cursor=cursor)

    assert http.get(f"{url}/api/calls", params={"pageSize": 50}, timeout=5).ok
    assert http.get(first["next"], timeout=5).status_code == 500
    assert http.get(first["next"], timeout=5).ok


def test_faults_and_the_request_log_are_controlled_over_http(
    url: str, http: requests.Session
) -> None:
    added = requests.post(f"{url}/_fake/faults", json={"kind": "429", "retry_after": 3}, timeout=5)
    assert added.status_code == 201
    assert added.json()["faults"][0]["params"] == {"retry_after": 3}
    assert http.get(f"{url}/api/calls", params={"pageSize": 5}, timeout=5).status_code == 429

    seen = requests.get(f"{url}/_fake/requests", timeout=5).json()["requests"]
    assert seen == [{"method": "GET", "path": "/api/calls", "query": {"pageSize": "5"}}]

    requests.post(f"{url}/_fake/faults", json={"kind": "503"}, timeout=5)
    assert requests.delete(f"{url}/_fake/faults", timeout=5).status_code == 204
    assert requests.get(f"{url}/_fake/faults", timeout=5).json() == {"faults": []}
    assert requests.post(f"{url}/_fake/reset", timeout=5).status_code == 204
    assert requests.get(f"{url}/_fake/requests", timeout=5).json() == {"requests": []}
    bad = requests.post(f"{url}/_fake/faults", json={"kind": "teapot"}, timeout=5)
    assert bad.status_code == 400


def test_random_faults_are_set_over_http(url: str, http: requests.Session) -> None:
    spec = {"rate": 1.0, "faults": [{"kind": "503"}], "endpoint": "calls", "seed": 3}
    assert requests.post(f"{url}/_fake/faults/random", json=spec, timeout=5).status_code == 204
    assert http.get(f"{url}/api/calls", timeout=5).status_code == 503
    assert requests.delete(f"{url}/_fake/faults", timeout=5).status_code == 204
    assert http.get(f"{url}/api/calls", timeout=5).ok
    bad = {"rate": 0.5, "faults": [{"kind": "teapot"}]}
    assert requests.post(f"{url}/_fake/faults/random", json=bad, timeout=5).status_code == 400


def test_a_trickled_answer_comes_a_space_at_a_time_then_whole(
    url: str, http: requests.Session, fake: FakeUltravox
) -> None:
    fake.inject("trickle", seconds=0.3)
    started = time.monotonic()
    with http.get(f"{url}/api/calls", params={"pageSize": 5}, timeout=5, stream=True) as answer:
        first = answer.raw.read1(100)
        body = first + answer.raw.read()
    assert first.isspace()  # headers and the first piece come at once
    assert time.monotonic() - started >= 0.3
    assert len(json.loads(body)["results"]) == 5


def test_calls_can_be_added_and_reset_forgets_them(
    url: str, http: requests.Session, fake: FakeUltravox
) -> None:
    later = generate_calls(3, seed=9, start=datetime(2026, 2, 1, tzinfo=UTC))
    assert requests.post(f"{url}/_fake/calls", json=later, timeout=5).json() == {"total": 240}
    assert http.get(f"{url}/api/calls", timeout=5).json()["results"][0] == later[-1]

    ended = {**CALLS[9], "ended": "2026-01-01T00:30:00Z", "endReason": "hangup"}
    fake.add_calls([ended])
    assert http.get(f"{url}/api/calls/{ended['callId']}", timeout=5).json() == ended
    assert len(fake.calls) == 240

    fake.reset()

    assert http.get(f"{url}/api/calls", timeout=5).json()["total"] == 237
    assert fake.calls == CALLS


def test_a_call_and_its_messages(url: str, http: requests.Session) -> None:
    call = CALLS[3]
    pages = walk(http, f"{url}/api/calls/{call['callId']}/messages", pageSize=2)

    assert http.get(f"{url}/api/calls/{call['callId']}", timeout=5).json() == call
    messages = [message for page in pages for message in page["results"]]
    assert messages == generate_messages(call)
    assert pages[0]["total"] == len(messages) >= 2
    assert messages[0]["role"] == "MESSAGE_ROLE_AGENT"
    assert messages[1]["role"] == "MESSAGE_ROLE_USER"
    assert {"text", "medium", "callStageId", "callStageMessageIndex", "timespan"} <= set(
        messages[0]
    )


def test_an_unknown_call_is_404(url: str, http: requests.Session) -> None:
    unknown = uuid.uuid4()

    call = http.get(f"{url}/api/calls/{unknown}", timeout=5)
    messages = http.get(f"{url}/api/calls/{unknown}/messages", timeout=5)

    assert call.status_code == messages.status_code == 404
    assert set(call.json()) == {"detail"}


def test_the_rate_limit_answers_429(url: str, fake: FakeUltravox) -> None:
    limited = FakeUltravox(KEY, CALLS[:5], rate_limit=2)
    with limited.serve() as running, requests.Session() as session:
        session.headers["X-API-Key"] = KEY
        # Five requests straddle at most two one-second windows, so one of them exceeds 2.
        responses = [session.get(f"{running.url}/api/calls", timeout=5) for _ in range(5)]

    refused = [r for r in responses if r.status_code == 429]
    assert refused
    assert refused[0].headers["Retry-After"] == "1"


def test_generated_calls_are_deterministic_and_every_tenth_is_live() -> None:
    calls = generate_calls(237)

    assert calls == CALLS
    assert generate_calls(20, seed=1) != generate_calls(20, seed=2)
    assert all(a["created"] < b["created"] for a, b in itertools.pairwise(calls))
    assert all(uuid.UUID(call["callId"]).version == 4 for call in calls)
    live = [call for call in calls if call["ended"] is None]
    assert live == calls[9::10]
    assert all(call["endReason"] is None and call["joined"] for call in live)
    assert all(call["endReason"] for call in calls if call["ended"])
    assert all(isinstance(value, str) for call in calls for value in call["metadata"].values())


def test_generated_call_ids_are_unique() -> None:
    calls = generate_calls(10_000)

    assert len({call["callId"] for call in calls}) == 10_000


def test_sign_is_hmac_sha256_over_body_then_timestamp() -> None:
    body = b'{"event":"call.ended","call":{"callId":"3c90c3cc-0d44-4b50-8888-8dd25736052a"}}'
    stamp = "2025-06-01T12:00:00.000000+00:00"

    signature = sign(body, stamp, "whsec_test_secret")

    assert signature == "f1b5e787595a712c2c9985c7a3b2032e1254cd6926b1eecd0cfae0035213cf4e"
    expected = hmac.new(b"whsec_test_secret", body + stamp.encode(), hashlib.sha256).hexdigest()
    assert signature == expected


def test_send_webhook_posts_a_signed_event() -> None:
    received: list[tuple[bytes, dict[str, str]]] = []
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook(request: Request) -> Response:
        received.append((await request.body(), dict(request.headers)))
        return Response(status_code=204)

    sent_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with server.serve(receiver) as running:
        response = send_webhook(
            f"{running.url}/hook", "call.ended", CALLS[0], ["new", "old"], timestamp=sent_at
        )

    body, headers = received[0]
    stamp = headers["x-ultravox-webhook-timestamp"]
    assert response.status_code == 204
    assert json.loads(body) == {"event": "call.ended", "call": CALLS[0]}
    assert datetime.fromisoformat(stamp) == sent_at
    signatures = headers["x-ultravox-webhook-signature"].split(",")
    assert signatures == [sign(body, stamp, "new"), sign(body, stamp, "old")]


def test_a_stopped_server_frees_its_port() -> None:
    with server.serve(FastAPI()) as running:
        assert requests.get(f"{running.url}/missing", timeout=5).status_code == 404

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{running.url}/missing", timeout=1)
