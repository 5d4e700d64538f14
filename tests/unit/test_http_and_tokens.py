"""Pure logic: Retry-After parsing, the cursor in a `next` URL, and bearer tokens."""

from __future__ import annotations

import email.utils
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import requests

from app import http, security
from app.config import get_settings
from app.ultravox_api.client import cursor_from_next


def response_with(retry_after: str) -> requests.Response:
    response = requests.Response()
    response.headers["Retry-After"] = retry_after
    return response


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert http.retry_after_seconds(response_with("7")) == 7.0
    later = datetime.now(UTC) + timedelta(seconds=30)
    for header in (
        email.utils.format_datetime(later, usegmt=True),
        later.strftime("%a, %d %b %Y %H:%M:%S -0000"),  # a naive date: read as UTC
    ):
        assert 25 <= (http.retry_after_seconds(response_with(header)) or 0) <= 30
    assert http.retry_after_seconds(response_with("soon")) is None


def test_the_cursor_comes_out_of_the_absolute_next_url() -> None:
    url = "https://api.ultravox.ai/api/calls?cursor=cD0yMDI2&pageSize=50&fromDate=2026-01-01"
    assert cursor_from_next(url) == "cD0yMDI2"
    assert cursor_from_next(None) is None


def test_tokens_carry_the_supabase_audience_and_expire() -> None:
    user = uuid.uuid4()
    assert security.user_from_token(security.create_token(user)) == user
    secret = get_settings().jwt_secret.get_secret_value()
    exp = datetime.now(UTC) + timedelta(minutes=5)
    foreign = jwt.encode({"sub": str(user), "exp": exp, "aud": "other"}, secret, "HS256")
    with pytest.raises(security.InvalidToken):
        security.user_from_token(foreign)
    with pytest.raises(security.InvalidToken):
        security.user_from_token(security.create_token(user, ttl=timedelta(seconds=-1)))
