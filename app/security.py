"""Bearer JWTs as Supabase Auth issues them: `aud` authenticated, `sub` the auth.users id,
`exp` checked; signed with the project's shared secret (HS256, JWT_SECRET) or with its
asymmetric signing keys (ES256/RS256), verified against its JWKS (SUPABASE_JWKS_URL), cached.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt

from app.config import get_settings

ALGORITHM = "HS256"
ASYMMETRIC = ("ES256", "RS256")
AUDIENCE = "authenticated"  # what Supabase puts in `aud` for signed-in users
JWKS_TIMEOUT_SECONDS = 10


class InvalidToken(Exception):
    """The token is missing, malformed, wrongly signed or expired."""


def create_token(user_id: uuid.UUID, *, ttl: timedelta = timedelta(hours=1)) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "aud": AUDIENCE,
        "role": "authenticated",
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, get_settings().jwt_secret.get_secret_value(), ALGORITHM)


def user_from_token(token: str) -> uuid.UUID:
    settings = get_settings()
    try:
        algorithm = str(jwt.get_unverified_header(token).get("alg"))
        claims = jwt.decode(
            token,
            _key_for(token, algorithm),
            algorithms=[algorithm],
            audience=AUDIENCE,
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp"]},
        )
        return uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, ValueError) as error:
        raise InvalidToken(str(error)) from error


def _key_for(token: str, algorithm: str) -> Any:
    """JWT_SECRET for HS256; the JWKS key named by the token's `kid` for ES256/RS256."""
    settings = get_settings()
    if algorithm == ALGORITHM:
        return settings.jwt_secret.get_secret_value()
    if algorithm not in ASYMMETRIC:
        raise InvalidToken(f"the {algorithm} algorithm is not accepted")
    if settings.supabase_jwks_url is None:
        raise InvalidToken(f"{algorithm} tokens need SUPABASE_JWKS_URL")
    client = _jwks_client(settings.supabase_jwks_url, settings.jwks_cache_seconds)
    return client.get_signing_key_from_jwt(token).key


@lru_cache
def _jwks_client(url: str, lifespan: int) -> jwt.PyJWKClient:
    """One client per process: it keeps the key set for `lifespan` seconds, and fetches it
    again early only for a `kid` it does not know (a rotated key)."""
    return jwt.PyJWKClient(url, lifespan=lifespan, timeout=JWKS_TIMEOUT_SECONDS)
