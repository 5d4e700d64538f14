"""Agencies and their members: created by `callsync agency`, read by the API for every request."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import crypto, errors, pauses
from app.models import Agency, AgencyMember, AgencyRole

# seed 000: what a sync job (and an enrichment item) says when its agency has no Ultravox key
NO_ULTRAVOX_API_KEY = "Agency API key not configured"


def add_agency(
    session: Session,
    *,
    name: str,
    ultravox_api_key: str | None = None,
    webhook_secret: str | None = None,
) -> uuid.UUID:
    """A new agency; its secrets are stored as pgcrypto ciphertext only."""
    agency = Agency(
        name=name,
        ultravox_api_key_encrypted=crypto.encrypt(session, ultravox_api_key)
        if ultravox_api_key
        else None,
        webhook_secret_encrypted=crypto.encrypt(session, webhook_secret)
        if webhook_secret
        else None,
    )
    session.add(agency)
    session.flush()
    return agency.id


def set_ultravox_api_key(session: Session, agency_id: uuid.UUID, api_key: str) -> None:
    """Store the agency's Ultravox key (ciphertext only); work paused for want of it resumes."""
    found = session.execute(
        update(Agency)
        .where(Agency.id == agency_id)
        .values(ultravox_api_key_encrypted=crypto.encrypt(session, api_key), updated_at=func.now())
        .returning(Agency.id)
    ).first()
    if found is None:
        raise LookupError(f"no agency {agency_id}")
    pauses.resume(session, pauses.ULTRAVOX, agency_id=agency_id)


def add_member(
    session: Session, *, agency_id: uuid.UUID, user_id: uuid.UUID, role: AgencyRole
) -> None:
    """Give the user `role` in the agency, replacing any role they had there. Where Supabase
    Auth keeps the users (auth.users), the user must be one of them."""
    if session.scalar(select(Agency.id).where(Agency.id == agency_id)) is None:
        raise errors.NotFound(f"no agency {agency_id}")
    if not _known_user(session, user_id):
        raise errors.NotFound(f"no user {user_id} in auth.users")
    stmt = insert(AgencyMember).values(agency_id=agency_id, user_id=user_id, role=role)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[AgencyMember.agency_id, AgencyMember.user_id],
            set_={"role": stmt.excluded.role},
        )
    )


def _known_user(session: Session, user_id: uuid.UUID) -> bool:
    if session.scalar(text("SELECT to_regclass('auth.users')")) is None:
        return True  # no Supabase Auth here: users are whoever JWT_SECRET's tokens name
    found = session.scalar(text("SELECT 1 FROM auth.users WHERE id = :id"), {"id": user_id})
    return found is not None


def set_secrets(
    session: Session,
    agency_id: uuid.UUID,
    *,
    ultravox_api_key: str | None = None,
    webhook_secret: str | None = None,
) -> None:
    """Store an existing agency's Ultravox key and/or webhook secret, encrypted; a secret not
    given stays as it is. Replacing the webhook secret ends any rotation."""
    values: dict[str, object] = {}
    if ultravox_api_key:
        values["ultravox_api_key_encrypted"] = crypto.encrypt(session, ultravox_api_key)
    if webhook_secret:
        values["webhook_secret_encrypted"] = crypto.encrypt(session, webhook_secret)
        values["webhook_secret_previous_encrypted"] = None
    if not values:
        raise errors.InvalidInput("give an Ultravox API key, a webhook secret or both")
    result = session.execute(
        update(Agency).where(Agency.id == agency_id).values(updated_at=func.now(), **values)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise errors.NotFound(f"no agency {agency_id}")


def rotate_webhook_secret(session: Session, agency_id: uuid.UUID, secret: str) -> None:
    """Store a new webhook secret; the current one becomes the previous, still accepted."""
    result = session.execute(
        update(Agency)
        .where(Agency.id == agency_id)
        .values(
            webhook_secret_previous_encrypted=Agency.webhook_secret_encrypted,
            webhook_secret_encrypted=crypto.encrypt(session, secret),
            updated_at=func.now(),
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise errors.NotFound(f"no agency {agency_id}")


def end_webhook_secret_rotation(session: Session, agency_id: uuid.UUID) -> None:
    """Forget the previous webhook secret: only the current one is accepted from now on."""
    result = session.execute(
        update(Agency)
        .where(Agency.id == agency_id)
        .values(webhook_secret_previous_encrypted=None, updated_at=func.now())
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise errors.NotFound(f"no agency {agency_id}")
