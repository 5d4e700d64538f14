"""Work paused because a provider's credential is missing, invalid or revoked."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, CreatedAt, UuidPk


class ProviderPause(Base):
    """One provider's work for one agency (or business, or everyone: both null) waits for a
    credential. `credential` names the one from the settings that failed (a digest, "" when
    unset), so that a different one is not held back by the pause."""

    __tablename__ = "provider_pauses"
    __table_args__ = (
        Index(
            "uq_provider_pauses_scope",
            "provider",
            "agency_id",
            "business_id",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[UuidPk]
    provider: Mapped[str]
    agency_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE")
    )
    business_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE")
    )
    credential: Mapped[str] = mapped_column(server_default=text("''"))
    reason: Mapped[str]
    since: Mapped[CreatedAt]
