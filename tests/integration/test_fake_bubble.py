"""The fake Bubble Data API speaks Bubble's shapes: get, replace, delete, bulk, errors."""

from __future__ import annotations

import json

import requests

from app.fakes.bubble import FakeBubble
from tests.conftest import BUBBLE_API_TOKEN, FAKE_BUBBLE_PORT

BASE = f"http://127.0.0.1:{FAKE_BUBBLE_PORT}/api/1.1/obj"
AUTH = {"Authorization": f"Bearer {BUBBLE_API_TOKEN}"}


def test_records_round_trip_in_bubbles_shapes(fake_bubble: FakeBubble) -> None:
    created = requests.post(f"{BASE}/rentalunit", json={"name": "Loft", "beds": 2}, headers=AUTH,
                            timeout=5)  # fmt: skip
    assert created.status_code == 201
    record_id = created.json()["id"]
    assert created.json() == {"status": "success", "id": record_id}
    got = requests.get(f"{BASE}/rentalunit/{record_id}", headers=AUTH, timeout=5).json()
    assert got["response"]["name"] == "Loft"
    assert {"_id", "Created Date", "Modified Date"} <= set(got["response"])
    replaced = requests.put(f"{BASE}/rentalunit/{record_id}", json={"name": "Flat"}, headers=AUTH,
                            timeout=5)  # fmt: skip
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
    body = "\n".join([json.dumps({"name": "a"}), "{oops", json.dumps({"name": "b"})])
    answer = requests.post(f"{BASE}/guest/bulk", data=body,
                           headers={**AUTH, "Content-Type": "text/plain"}, timeout=5)  # fmt: skip
    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert [line["status"] for line in lines] == ["success", "error", "success"]
    assert len(fake_bubble.all("guest")) == 2


def test_a_bad_token_and_the_throttle(fake_bubble: FakeBubble) -> None:
    bad = requests.get(f"{BASE}/guest", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bad.status_code == 401
    fake_bubble.throttle()
    assert requests.get(f"{BASE}/guest", headers=AUTH, timeout=5).status_code == 429
    assert requests.get(f"{BASE}/guest", headers=AUTH, timeout=5).status_code == 200
