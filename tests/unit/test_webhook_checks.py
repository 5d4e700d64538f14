"""Webhook signatures and webhook-ingest's checks, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import Headers

from app.webhooks.ingest import Delivery, Rejected, check, loggable_headers
from app.webhooks.signatures import parse_timestamp, sign, signature_matches

# api-facts §1.5's worked example.
SECRET = "whsec_test_secret"
STAMP = "2025-06-01T12:00:00.000000+00:00"
BODY = b'{"event":"call.ended","call":{"callId":"3c90c3cc-0d44-4b50-8888-8dd25736052a"}}'
EXPECTED = "f1b5e787595a712c2c9985c7a3b2032e1254cd6926b1eecd0cfae0035213cf4e"
NOW = datetime(2025, 6, 1, 12, 0, 30, tzinfo=UTC)
TOLERANCE = timedelta(seconds=300)


def delivery(
    body: bytes = BODY,
    *,
    stamp: str = STAMP,
    secret: str = SECRET,
    content_type: str = "application/json",
    signature: str | None = None,
) -> Delivery:
    headers = {
        "Content-Type": content_type,
        "X-Ultravox-Webhook-Timestamp": stamp,
        "X-Ultravox-Webhook-Signature": signature or sign(secret, body, stamp),
    }
    return Delivery(body, Headers(headers))


def reason(item: Delivery, *, secrets: tuple[str, ...] = (SECRET,), now: datetime = NOW) -> str:
    with pytest.raises(Rejected) as rejected:
        check(item, list(secrets), now=now, tolerance=TOLERANCE)
    return f"{rejected.value.status} {rejected.value.reason}"


def test_the_worked_example_signs_body_then_timestamp_with_no_separator() -> None:
    assert sign(SECRET, BODY, STAMP) == EXPECTED


def test_a_stripe_style_signature_does_not_match() -> None:
    stripe_style = sign(SECRET, STAMP.encode() + b"." + BODY, "")
    assert not signature_matches([SECRET], BODY, STAMP, stripe_style)


def test_any_of_several_signatures_matches_during_a_rotation() -> None:
    old = sign("whsec_old", BODY, STAMP)
    assert signature_matches([SECRET], BODY, STAMP, f"{old},{EXPECTED}")
    assert signature_matches([SECRET], BODY, STAMP, f"{EXPECTED}, {old}")
    assert signature_matches(["whsec_new", SECRET], BODY, STAMP, EXPECTED)
    assert not signature_matches(["whsec_new"], BODY, STAMP, f"{old},{EXPECTED}")


@pytest.mark.parametrize(
    "header", ["", ",", EXPECTED.upper(), EXPECTED[:-1], "é" * 64, EXPECTED + "00"]
)
def test_near_misses_do_not_match(header: str) -> None:
    assert not signature_matches([SECRET], BODY, STAMP, header)


def test_the_body_and_timestamp_are_both_signed() -> None:
    assert not signature_matches([SECRET], BODY + b" ", STAMP, EXPECTED)
    assert not signature_matches([SECRET], BODY, STAMP.replace("12:00", "12:01"), EXPECTED)


@pytest.mark.parametrize(
    "value",
    [
        "2025-06-01T12:00:00.000000+00:00",
        "2025-06-01T12:00:00Z",
        "2025-06-01T14:00:00+02:00",
        "2025-06-01T12:00:00",
        " 2025-06-01T12:00:00.5Z ",
    ],
)
def test_timestamps_parse_tolerantly_to_utc(value: str) -> None:
    parsed = parse_timestamp(value)
    assert parsed is not None
    assert parsed.replace(microsecond=0) == datetime(2025, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("value", ["", "yesterday", "1748779200", "2025-13-01T00:00:00Z"])
def test_other_timestamps_do_not_parse(value: str) -> None:
    assert parse_timestamp(value) is None


def test_a_valid_delivery_gives_its_event() -> None:
    event = check(delivery(), [SECRET], now=NOW, tolerance=TOLERANCE)
    assert (event.event, event.call_id) == ("call.ended", "3c90c3cc-0d44-4b50-8888-8dd25736052a")
    assert event.payload == json.loads(BODY)


def test_the_previous_secret_is_accepted_during_a_rotation() -> None:
    check(delivery(), ["whsec_new", SECRET], now=NOW, tolerance=TOLERANCE)


@pytest.mark.parametrize("skew", [timedelta(seconds=301), timedelta(seconds=-301)])
def test_a_timestamp_outside_the_tolerance_is_refused_either_way(skew: timedelta) -> None:
    stamp = (NOW - skew).isoformat()
    direction = "old" if skew.total_seconds() > 0 else "in the future"
    assert reason(delivery(stamp=stamp)) == (
        f"400 timestamp is 301s {direction}, outside the 300s tolerance"
    )


@pytest.mark.parametrize("skew", [timedelta(seconds=299), timedelta(seconds=-299)])
def test_a_timestamp_inside_the_tolerance_is_accepted(skew: timedelta) -> None:
    check(delivery(stamp=(NOW - skew).isoformat()), [SECRET], now=NOW, tolerance=TOLERANCE)


def body(value: object) -> bytes:
    return json.dumps(value).encode()


CALL_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "400 body is not valid UTF-8 JSON"),
        (b'{"event": NaN}', "400 body is not valid UTF-8 JSON"),
        (b"\xff\xfe{}", "400 body is not valid UTF-8 JSON"),
        (body([1, 2]), "400 body is not a JSON object"),
        (
            body({"call": {"callId": CALL_ID}}),
            "400 unknown event None; expected one of "
            "['call.billed', 'call.ended', 'call.joined', 'call.started']",
        ),
        (
            body({"event": "call.deleted", "call": {"callId": CALL_ID}}),
            "400 unknown event "
            "'call.deleted'; expected one of ['call.billed', 'call.ended', 'call.joined', "
            "'call.started']",
        ),
        (body({"event": "call.ended"}), "400 missing call object"),
        (body({"event": "call.ended", "call": {}}), "400 missing call.callId"),
        (body({"event": "call.ended", "call": {"callId": 7}}), "400 missing call.callId"),
        (body({"event": "call.ended", "call": {"callId": "abc"}}), "400 call.callId is not a UUID"),
        (
            body({"event": "call.ended", "call": {"callId": CALL_ID.upper()}}),
            "400 call.callId is not a lowercase hyphenated UUID",
        ),
    ],
)
def test_bad_bodies_are_refused_with_their_reason(raw: bytes, expected: str) -> None:
    assert reason(delivery(raw)) == expected


def test_signature_problems_are_401() -> None:
    assert reason(delivery(signature=sign("whsec_other", BODY, STAMP))) == (
        "401 signature does not match the agency's webhook secret"
    )
    assert reason(delivery(), secrets=()) == "401 the agency has no webhook secret configured"
    no_signature = Delivery(BODY, Headers({"Content-Type": "application/json"}))
    assert reason(no_signature) == "401 missing X-Ultravox-Webhook-Signature header"
    no_stamp = Headers({"Content-Type": "application/json", "X-Ultravox-Webhook-Signature": "ab"})
    assert reason(Delivery(BODY, no_stamp)) == "401 missing X-Ultravox-Webhook-Timestamp header"


def test_a_signed_but_unparseable_timestamp_is_400() -> None:
    assert reason(delivery(stamp="yesterday")) == (
        "400 X-Ultravox-Webhook-Timestamp is not an ISO-8601 datetime"
    )


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/cloudevents+json"],
)
def test_json_media_types_are_accepted(content_type: str) -> None:
    check(delivery(content_type=content_type), [SECRET], now=NOW, tolerance=TOLERANCE)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_other_media_types_are_415(content_type: str) -> None:
    shown = content_type or "none"
    assert reason(delivery(content_type=content_type)) == (
        f"415 Content-Type must be application/json, not {shown}"
    )


def test_logged_headers_drop_credentials_and_secrets() -> None:
    headers = Headers(
        {
            "Authorization": "Bearer x",
            "Cookie": "a=b",
            "X-Webhook-Secret": "s",
            "X-Api-Key": "k",
            "X-Auth-Token": "t",
            "Content-Type": "application/json",
            "X-Ultravox-Webhook-Signature": "ab",
        }
    )
    assert loggable_headers(headers) == {
        "content-type": "application/json",
        "x-ultravox-webhook-signature": "ab",
    }
