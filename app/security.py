"""Bearer JWTs in the shape Supabase issues (HS256, `sub` = the user's uuid, `exp` checked)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt

from app.config import get_settings

ALGORITHM = "HS256"
AUDIENCE = "authenticated"  # what Supabase puts in `aud` for signed-in users


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
    try:
        claims = jwt.decode(
            token,
            get_settings().jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["sub", "exp"]},
        )
        return uuid.UUID(claims["sub"])
    except (jwt.PyJWTError, ValueError) as error:
        raise InvalidToken(str(error)) from error
