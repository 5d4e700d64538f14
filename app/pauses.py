"""Work that waits for a credential: a provider's key missing, invalid or revoked pauses that
provider's work for the agency (or business, or everyone when the credential is a setting)
instead of failing item after item until they are dead.

A pause is one provider_pauses row, written on the first refusal with the provider's reason
and logged once. The claims leave a paused agency's items alone (`not_paused`), so they stay
pending and no attempt is counted; setting the credential deletes the pause and the work goes
on at once. A credential from the settings is paused by its digest: a worker started with a
different one is not held back, and clears the stale pause (`resume_other_credentials`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app import budgets
from app.models import ProviderPause

log = logging.getLogger("pauses")

ULTRAVOX, ELEVENLABS, BUBBLE, SALESFORCE = "ultravox", "elevenlabs", "bubble", "salesforce"
NEEDS_CREDENTIALS = "needs_credentials"


@dataclass(frozen=True)
class Pause:
    provider: str
    agency_id: uuid.UUID | None
    business_id: uuid.UUID | None
    reason: str
    since: datetime

    @property
    def scope(self) -> str:
        return _scope(self.agency_id, self.business_id)


def credential_id(secret: str | None) -> str:
    """How a pause names a credential from the settings: a digest, "" when it is unset."""
    return budgets.key_id(secret) if secret else ""


def pause(
    session: Session,
    provider: str,
    reason: str,
    *,
    agency_id: uuid.UUID | None = None,
    business_id: uuid.UUID | None = None,
    credential: str = "",
) -> bool:
    """Pause the work; True (and one log line) when it was not paused already."""
    stmt = (
        insert(ProviderPause)
        .values(
            provider=provider,
            agency_id=agency_id,
            business_id=business_id,
            credential=credential,
            reason=reason,
        )
        .on_conflict_do_nothing(index_elements=["provider", "agency_id", "business_id"])
        .returning(ProviderPause.id)
    )
    paused = session.execute(stmt).first() is not None
    if paused:
        scope = _scope(agency_id, business_id)
        log.warning("[pause] %s work of %s needs credentials: %s", provider, scope, reason)
    return paused


def resume(
    session: Session,
    provider: str,
    *,
    agency_id: uuid.UUID | None = None,
    business_id: uuid.UUID | None = None,
) -> bool:
    """The credential was set: the work goes on. True when it had been paused."""
    stmt = delete(ProviderPause).where(
        ProviderPause.provider == provider,
        _is(ProviderPause.agency_id, agency_id),
        _is(ProviderPause.business_id, business_id),
    )
    resumed = bool(session.execute(stmt.returning(ProviderPause.id)).first())
    if resumed:
        log.info("[pause] %s work of %s resumed", provider, _scope(agency_id, business_id))
    return resumed


def resume_other_credentials(session: Session, provider: str, credential: str) -> None:
    """Lift a pause of everyone's work that was for another credential than this one."""
    stmt = delete(ProviderPause).where(
        ProviderPause.provider == provider,
        ProviderPause.agency_id.is_(None),
        ProviderPause.business_id.is_(None),
        ProviderPause.credential != credential,
    )
    if session.execute(stmt.returning(ProviderPause.id)).first():
        log.info("[pause] %s work resumed: its credential changed", provider)


def paused_for_everyone(session: Session, provider: str, credential: str) -> str | None:
    """The reason everyone's work for the provider waits with this credential, if it does."""
    return session.scalar(
        select(ProviderPause.reason).where(
            ProviderPause.provider == provider,
            ProviderPause.agency_id.is_(None),
            ProviderPause.business_id.is_(None),
            ProviderPause.credential == credential,
        )
    )


def not_paused(provider: str, agency_id: Any, *joined: ColumnElement[bool]) -> ColumnElement[bool]:
    """For a claim's WHERE: the row's agency (`agency_id`, a column, of a table `joined` to the
    claimed one if need be) is not paused."""
    pauses = ProviderPause.__table__.c
    return ~exists().where(pauses.provider == provider, pauses.agency_id == agency_id, *joined)


def reason_for(session: Session, provider: str, agency_id: uuid.UUID) -> str | None:
    return session.scalar(
        select(ProviderPause.reason).where(
            ProviderPause.provider == provider, ProviderPause.agency_id == agency_id
        )
    )


def all_pauses(session: Session) -> list[Pause]:
    rows = session.execute(
        text(
            "SELECT provider, agency_id, business_id, reason, since FROM provider_pauses "
            "ORDER BY since, provider"
        )
    )
    return [Pause(*row) for row in rows]


def _scope(agency_id: uuid.UUID | None, business_id: uuid.UUID | None) -> str:
    if agency_id is not None:
        return f"agency {agency_id}"
    return "everyone" if business_id is None else f"business {business_id}"


def _is(column: Any, value: uuid.UUID | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else and_(column == value)
