"""The fake Bubble Data API speaks Bubble's shapes: get, replace, delete, bulk, errors, and
refuses what a real app refuses: fields its types lack, values of the wrong type, unknown types."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from app.fakes.bubble import FakeBubble
from tests.conftest import BUBBLE_API_TOKEN, FAKE_BUBBLE_PORT

BASE = f"http://127.0.0.1:{FAKE_BUBBLE_PORT}/api/1.1/obj"
AUTH = {"Authorization": f"Bearer {BUBBLE_API_TOKEN}"}


def test_records_round_trip_in_bubbles_shapes(fake_bubble: FakeBubble) -> None:
    created = requests.post(
        f"{BASE}/rentalunit", json={"name": "Loft", "beds": 2}, headers=AUTH, timeout=5
    )
    assert created.status_code == 201
    record_id = created.json()["id"]
    assert created.json() == {"status": "success", "id": record_id}
    got = requests.get(f"{BASE}/rentalunit/{record_id}", headers=AUTH, timeout=5).json()
    assert got["response"]["name"] == "Loft"
    assert {"_id", "Created Date", "Modified Date"} <= set(got["response"])
    replaced = requests.put(
        f"{BASE}/rentalunit/{record_id}", json={"name": "Flat"}, headers=AUTH, timeout=5
    )
    assert replaced.status_code == 204
    assert "beds" not in fake_bubble.all("rentalunit")[0]  # PUT clears what it leaves out
    assert (
        requests.delete(f"{BASE}/rentalunit/{record_id}", headers=AUTH, timeout=5).status_code
        == 204
    )
    missing = requests.get(f"{BASE}/rentalunit/{record_id}", headers=AUTH, timeout=5)
    assert missing.status_code == 404
    assert missing.json()["body"]["status"] == "MISSING_DATA"


def test_bulk_answers_a_line_per_line(fake_bubble: FakeBubble) -> None:
    body = "\n".join(
        [json.dumps({"name": "a"}), "{oops", json.dumps({"name": "b"}), json.dumps({"nick": "c"})]
    )
    answer = requests.post(
        f"{BASE}/guest/bulk", data=body, headers={**AUTH, "Content-Type": "text/plain"}, timeout=5
    )
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert [line["status"] for line in lines] == ["success", "error", "success", "error"]
    assert lines[3]["message"] == "Unrecognized field: nick"
    assert len(fake_bubble.all("guest")) == 2


def test_a_bad_token_and_the_throttle(fake_bubble: FakeBubble) -> None:
    bad = requests.get(f"{BASE}/guest", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bad.status_code == 401
    fake_bubble.throttle()
    assert requests.get(f"{BASE}/guest", headers=AUTH, timeout=5).status_code == 429
    assert requests.get(f"{BASE}/guest", headers=AUTH, timeout=5).status_code == 200


def refusal(response: requests.Response) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = response.json()
    assert body["statusCode"] == response.status_code
    return response.status_code, body["body"]


def test_a_field_the_type_lacks_is_refused_as_bubble_refuses_it(fake_bubble: FakeBubble) -> None:
    answer = requests.post(
        f"{BASE}/user", json={"name": "Ada", "callsync_key": "k"}, headers=AUTH, timeout=5
    )
    assert refusal(answer) == (
        400,
        {"status": "INVALID_DATA", "message": "Unrecognized field: callsync_key"},
    )
    assert fake_bubble.all("user") == []
    record_id = requests.post(f"{BASE}/user", json={"name": "Ada"}, headers=AUTH, timeout=5).json()
    patched = requests.patch(
        f"{BASE}/user/{record_id['id']}", json={"nick": "A"}, headers=AUTH, timeout=5
    )
    assert refusal(patched)[0] == 400
    searched = requests.get(
        f"{BASE}/user",
        headers=AUTH,
        timeout=5,
        params={
            "constraints": json.dumps([{"key": "nick", "constraint_type": "equals", "value": "A"}])
        },
    )
    assert refusal(searched) == (
        400,
        {"status": "INVALID_DATA", "message": "Unrecognized field: nick"},
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"beds": "two"}, 'Invalid data for field beds: "two" is not a valid number'),
        ({"beds": True}, "Invalid data for field beds: true is not a valid number"),
        ({"name": 3}, "Invalid data for field name: 3 is not a valid text"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused(
    fake_bubble: FakeBubble, fields: dict[str, Any], message: str
) -> None:
    answer = requests.post(f"{BASE}/rentalunit", json=fields, headers=AUTH, timeout=5)
    assert refusal(answer) == (400, {"status": "INVALID_DATA", "message": message})


def test_a_field_named_twice_is_refused(fake_bubble: FakeBubble) -> None:
    body = '{"name": "a", "name": "b"}'
    answer = requests.post(
        f"{BASE}/rentalunit",
        data=body,
        timeout=5,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert refusal(answer)[1]["message"] == "Duplicate field names: name"


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_a_type_the_app_lacks_is_not_found(fake_bubble: FakeBubble, method: str) -> None:
    path = "/room" if method == "POST" else "/room/1671702337369x488321592367327900"
    answer = requests.request(method, f"{BASE}{path}", json={}, headers=AUTH, timeout=5)
    assert refusal(answer) == (404, {"status": "NOT_FOUND", "message": "Type not found: room"})


def test_a_declared_field_is_kept_until_the_reset(fake_bubble: FakeBubble) -> None:
    fake_bubble.declare("user", {"callsync_key": "text"})
    answer = requests.post(f"{BASE}/user", json={"callsync_key": "k"}, headers=AUTH, timeout=5)
    assert answer.status_code == 201
    fake_bubble.reset()
    assert "callsync_key" not in fake_bubble.types["user"]
