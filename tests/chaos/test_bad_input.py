"""Property-based bad input, over HTTP: malformed webhook deliveries and API bodies never get a
5xx, every rejected delivery is logged with its reason, and nothing is queued."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.fakes.ultravox import sign
from app.models import HistoricalSyncJob, WebhookEvent, WebhookLog
from tests.chaos.conftest import FUZZ_CASES, count
from tests.helpers import ApiClient, make_agency, make_member

SECRET = "whsec_fuzz"
EVENTS = ("call.started", "call.joined", "call.ended", "call.billed")
FUZZ = settings(
    max_examples=FUZZ_CASES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Bodies that are JSON but not an acceptable event: not an object, an unknown event, no callId.
bad_events = st.one_of(
    json_values.filter(lambda value: not isinstance(value, dict)),
    st.builds(
        lambda event, call: {"event": event, "call": call},
        st.text(max_size=20).filter(lambda e: e not in EVENTS),
        json_values,
    ),
    st.builds(
        lambda event, call: {"event": event, "call": call},
        st.sampled_from(EVENTS),
        st.dictionaries(
            st.text(max_size=8).filter(lambda k: k != "callId"), json_values, max_size=4
        ),
    ),
)
good_event = st.builds(
    lambda event, call_id: {"event": event, "call": {"callId": str(call_id)}},
    st.sampled_from(EVENTS),
    st.uuids(),
)
hex_text = st.text(alphabet="0123456789abcdef,", max_size=80)
# What a client can send as a header value: printable ASCII, no leading or trailing space.
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
    str.strip
)


def now() -> str:
    return datetime.now(UTC).isoformat()


@st.composite
def bad_delivery(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    """(kind, agency path segment or "", headers, body) of a delivery that must be refused."""
    kind = draw(
        st.sampled_from(
            [
                "garbage",
                "bad event",
                "bad signature",
                "no signature",
                "bad timestamp",
                "media type",
                "unknown agency",
                "bad path",
            ]
        )
    )
    stamp = now()
    body = json.dumps(draw(good_event)).encode()
    headers = {"Content-Type": "application/json"}
    agency = ""  # the fixture's agency
    if kind == "garbage":
        body = draw(st.binary(max_size=300))
    elif kind == "bad event":
        body = json.dumps(draw(bad_events)).encode()
    elif kind == "bad timestamp":
        stamp = draw(
            st.one_of(
                header_text,
                st.integers(301, 10**6).map(
                    lambda s: (datetime.now(UTC) - timedelta(seconds=s)).isoformat()
                ),
                st.integers(301, 10**6).map(
                    lambda s: (datetime.now(UTC) + timedelta(seconds=s)).isoformat()
                ),
            )
        )
    elif kind == "media type":
        headers["Content-Type"] = draw(
            st.sampled_from(
                [
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                    "",
                    "application/xml",
                ]
            )
        )
    elif kind == "unknown agency":
        agency = str(draw(st.uuids()))
    elif kind == "bad path":
        agency = draw(
            st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=40)
        )
    headers["X-Ultravox-Webhook-Timestamp"] = stamp
    if kind == "bad signature":
        headers["X-Ultravox-Webhook-Signature"] = draw(hex_text)
    elif kind != "no signature":
        headers["X-Ultravox-Webhook-Signature"] = sign(body, stamp, SECRET)
    return kind, agency, headers, body


@pytest.mark.timeout(900)
def test_malformed_webhooks_get_no_5xx_are_each_logged_with_a_reason_and_queue_nothing(
    api: ApiClient, session: Session, report: Callable[..., None]
) -> None:
    agency = make_agency(session, webhook_secret=SECRET)
    answers: Counter[tuple[str, int]] = Counter()

    @FUZZ
    @given(bad_delivery())
    def deliver(case: tuple[str, str, dict[str, str], bytes]) -> None:
        kind, path_agency, headers, body = case
        answer = api.post(f"/webhooks/ultravox/{path_agency or agency}", data=body, headers=headers)
        answers[kind, answer.status_code] += 1
        assert answer.status_code < 500, (case, answer.text)
        assert answer.status_code != 204, case

    deliver()
    sent = sum(answers.values())
    logs = count(WebhookLog)
    with_reason = count(
        WebhookLog,
        WebhookLog.validation_success.is_(False),
        WebhookLog.validation_error.is_not(None),
        WebhookLog.validation_error != "",
    )
    queued = count(WebhookEvent)
    statuses = Counter(status for (_, status) in answers.elements())
    report(
        "malformed webhooks (property-based)",
        f"{sent:,} deliveries of 8 kinds of bad input",
        f"answers {dict(sorted(statuses.items()))}; {logs:,} webhook_logs rows, "
        f"{with_reason:,} with a reason; {queued} queued",
        sent == logs == with_reason and queued == 0 and all(s < 500 for s in statuses),
    )
    assert logs == sent
    assert with_reason == sent
    assert queued == 0


def api_body() -> st.SearchStrategy[Any]:
    fields = st.fixed_dictionaries(
        {},
        optional={
            "date_from": json_values | st.datetimes().map(str),
            "date_to": json_values | st.datetimes().map(str),
            "max_calls": json_values | st.integers(),
        },
    )
    return st.one_of(json_values, fields)


@pytest.mark.timeout(900)
def test_malformed_api_requests_get_4xx_never_5xx(
    api: ApiClient, session: Session, report: Callable[..., None]
) -> None:
    agency = make_agency(session)
    token = make_member(session, agency, "owner")
    answers: Counter[int] = Counter()

    @FUZZ
    @given(
        body=st.one_of(
            api_body().map(lambda value: json.dumps(value).encode()), st.binary(max_size=200)
        ),
        authorization=st.one_of(st.just(f"Bearer {token}"), st.just(""), header_text),
        job=st.one_of(st.uuids().map(str), st.text(alphabet="abcdef0123456789-", max_size=40)),
    )
    def call(body: bytes, authorization: str, job: str) -> None:
        headers = {"Content-Type": "application/json", "Authorization": authorization}
        for answer in (
            api.post("/api/historical-syncs", data=body, headers=headers),
            api.get(f"/api/historical-syncs/{job}", headers=headers),
            api.post(f"/api/historical-syncs/{job}/cancel", headers=headers),
        ):
            answers[answer.status_code] += 1
            assert answer.status_code < 500, (body, authorization, job, answer.text)

    call()
    started = len(session.scalars(select(HistoricalSyncJob)).all())
    report(
        "malformed API requests (property-based)",
        f"{sum(answers.values()):,} requests: random bodies, tokens and job ids",
        f"answers {dict(sorted(answers.items()))}; {started} job(s) started by a valid body",
        all(status < 500 for status in answers),
    )
