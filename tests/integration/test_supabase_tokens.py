"""Supabase Auth's access tokens work as they are: HS256 with the project's JWT secret, or
ES256/RS256 with its signing keys, verified against its JWKS (served on loopback), cached."""

from __future__ import annotations

import uuid
from datetime import timedelta

import jwt
import pytest
from sqlalchemy.orm import Session

from app import agencies
from app.config import get_settings
from app.fakes.supabase_auth import FakeSupabaseAuth
from app.models import AgencyRole
from tests.helpers import ApiClient, make_agency


@pytest.fixture
def user(session: Session) -> uuid.UUID:
    user_id = uuid.uuid4()
    agency = make_agency(session)
    agencies.add_member(session, agency_id=agency, user_id=user_id, role=AgencyRole.member)
    session.commit()
    return user_id


def status(api: ApiClient, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return api.get("/api/historical-syncs", headers=headers).status_code


def test_tokens_signed_as_supabase_signs_them_are_accepted(
    api: ApiClient, user: uuid.UUID, supabase_auth: FakeSupabaseAuth
) -> None:
    shared = jwt.encode(
        {"sub": str(user), "aud": "authenticated", "role": "authenticated", "exp": 2**31},
        get_settings().jwt_secret.get_secret_value(),
        "HS256",
    )
    assert status(api, shared) == 200
    assert status(api, supabase_auth.sign(user, "ES256")) == 200
    assert status(api, supabase_auth.sign(user, "RS256")) == 200


def test_the_jwks_is_fetched_once_then_reused(
    api: ApiClient, user: uuid.UUID, supabase_auth: FakeSupabaseAuth
) -> None:
    assert status(api, supabase_auth.sign(user, "ES256")) == 200
    fetched = supabase_auth.jwks_requests
    for _ in range(5):
        assert status(api, supabase_auth.sign(user, "RS256")) == 200
    assert supabase_auth.jwks_requests == fetched


def test_bad_tokens_are_refused(
    api: ApiClient, user: uuid.UUID, supabase_auth: FakeSupabaseAuth
) -> None:
    other = FakeSupabaseAuth()  # the same kid names, but keys the project never published
    forged = other.sign(user, "ES256", header_kid=supabase_auth.kid("ES256"))
    expired = supabase_auth.sign(user, "RS256", ttl=timedelta(seconds=-60))
    anon = supabase_auth.sign(user, "ES256", aud="anon")
    unknown_kid = other.sign(user, "ES256")
    claims = {"sub": str(user), "aud": "authenticated", "exp": 2**31}
    unsigned = jwt.encode(claims, "", "none")
    for token in (forged, expired, anon, unknown_kid, unsigned):
        assert status(api, token) == 401


def test_jwt_issuer_when_set_must_be_the_tokens_iss(
    api: ApiClient,
    user: uuid.UUID,
    supabase_auth: FakeSupabaseAuth,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = "https://project.supabase.co/auth/v1"
    monkeypatch.setenv("JWT_ISSUER", issuer)
    get_settings.cache_clear()
    try:
        assert status(api, supabase_auth.sign(user, "ES256", iss=issuer)) == 200
        assert status(api, supabase_auth.sign(user, "ES256", iss="https://other.test")) == 401
        assert status(api, supabase_auth.sign(user, "ES256")) == 401
    finally:
        monkeypatch.delenv("JWT_ISSUER")
        get_settings.cache_clear()
