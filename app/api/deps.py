"""Request dependencies: the database session, the caller, and the agency acted on."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import db, security
from app.config import get_settings
from app.models import AgencyMember, AgencyRole


def get_session() -> Iterator[Session]:
    """A session whose handler commits explicitly before it publishes anything."""
    with db.get_sessionmaker()() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def current_user(credentials: BearerDep) -> uuid.UUID:
    if credentials is None:
        raise _unauthorized("missing bearer token")
    try:
        return security.user_from_token(credentials.credentials)
    except security.InvalidToken as error:
        raise _unauthorized(f"invalid token: {error}") from error


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID
    agency_id: uuid.UUID
    role: AgencyRole


def current_caller(
    session: SessionDep,
    user_id: Annotated[uuid.UUID, Depends(current_user)],
    x_agency_id: Annotated[uuid.UUID | None, Header()] = None,
) -> Caller:
    """The agency named by X-Agency-Id, or the user's only agency, with the user's role in it."""
    stmt = select(AgencyMember.agency_id, AgencyMember.role).where(AgencyMember.user_id == user_id)
    if x_agency_id is not None:
        stmt = stmt.where(AgencyMember.agency_id == x_agency_id)
    memberships = session.execute(stmt.limit(2)).all()
    if not memberships:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not a member of this agency")
    if len(memberships) > 1:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "member of several agencies: send X-Agency-Id"
        )
    agency_id, role = memberships[0]
    return Caller(user_id=user_id, agency_id=agency_id, role=role)


CallerDep = Annotated[Caller, Depends(current_caller)]


def admin_caller(caller: CallerDep) -> Caller:
    if caller.role not in (AgencyRole.owner, AgencyRole.admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "requires the admin or owner role")
    return caller


AdminDep = Annotated[Caller, Depends(admin_caller)]


def service_caller(credentials: BearerDep) -> None:
    """Cron and internal callers present SERVICE_TOKEN as their bearer token."""
    expected = get_settings().service_token
    if expected is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "SERVICE_TOKEN is not configured")
    if not _bearer_is(credentials, expected):
        raise _unauthorized("invalid service token")


def metrics_reader(request: Request, credentials: BearerDep) -> None:
    """With METRICS_TOKEN set, only a caller presenting it as bearer token reads /metrics."""
    expected: SecretStr | None = request.app.state.settings.metrics_token
    if expected is not None and not _bearer_is(credentials, expected):
        raise _unauthorized("invalid metrics token")


def _bearer_is(credentials: HTTPAuthorizationCredentials | None, expected: SecretStr) -> bool:
    given = credentials.credentials if credentials else ""
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())
