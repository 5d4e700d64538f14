"""A calls page as the client reads it: whole in one pass, or record by record around a bad one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from app.fakes.ultravox import BAD_RECORDS, generate_calls
from app.ultravox_api.schemas import BadCall, CallsPage

CALLS = generate_calls(5, live_every=0)


def body(results: list[Any], **envelope: Any) -> bytes:
    return json.dumps({"next": None, "results": results, "total": 5, **envelope}).encode()


def test_a_good_page_keeps_its_own_bytes() -> None:
    raw = body(CALLS)
    page = CallsPage.from_body(raw)
    assert page.body is raw
    assert (len(page.results), page.received, page.bad) == (5, 5, [])


def test_a_bad_record_is_left_out_and_kept_with_its_reason() -> None:
    spoiled = BAD_RECORDS["call_id_not_uuid"](CALLS[2])
    page = CallsPage.from_body(body([*CALLS[:2], spoiled, *CALLS[3:]], next="https://x/?c=1"))
    assert [str(call.callId) for call in page.results] == [
        c["callId"] for c in CALLS if c is not CALLS[2]
    ]
    assert (page.received, page.next, page.total) == (5, "https://x/?c=1", 5)
    [bad] = page.bad
    assert bad.call_id == spoiled["callId"]
    assert bad.reason.startswith("callId: Input should be a valid UUID")
    assert json.loads(page.body)["results"] == [c for c in CALLS if c is not CALLS[2]]


def test_a_record_that_is_not_an_object_has_no_call_id() -> None:
    page = CallsPage.from_body(body(["not a call", *CALLS[1:]]))
    assert page.bad == [
        BadCall(None, "record: Input should be a valid dictionary or instance of UltravoxCall")
    ]


@pytest.mark.parametrize(
    "raw",
    [b"<html>", body([]).replace(b"[]", b"{}"), body([CALLS[0], 7], next=3)],
    ids=["not_json", "results_not_list", "next_not_a_string"],
)
def test_a_bad_envelope_still_fails_the_page(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        CallsPage.from_body(raw)
