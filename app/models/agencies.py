"""Agencies (tenants), their members, and the calls imported or received for them."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import AgencyRole, Base, CreatedAt, UuidPk, pg_enum


class Agency(Base):
    """A customer account; its provider key and webhook secrets are pgcrypto ciphertext."""

    __tablename__ = "agencies"

    id: Mapped[UuidPk]
    name: Mapped[str]
    ultravox_api_key_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    webhook_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The secret being rotated out: webhooks signed with either are accepted.
    webhook_secret_previous_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]


class AgencyMember(Base):
    """A user's role in an agency; the API reads it for every authenticated request."""

    __tablename__ = "agency_members"
    __table_args__ = (
        UniqueConstraint("agency_id", "user_id"),
        Index("idx_agency_members_user", "user_id"),
    )

    id: Mapped[UuidPk]
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID]
    role: Mapped[AgencyRole] = mapped_column(
        pg_enum(AgencyRole, "agency_role"), server_default=text("'member'")
    )
    created_at: Mapped[CreatedAt]


class Call(Base):
    """One Ultravox call (api-facts §1.3) as typed columns plus the raw object.

    `created`, `joined` and `ended` keep Ultravox's names; `created_at` is this row's own.
    """

    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("agency_id", "ultravox_call_id"),
        Index("idx_calls_agency_created", "agency_id", text("created DESC")),
    )

    id: Mapped[UuidPk]
    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"))
    ultravox_call_id: Mapped[uuid.UUID]
    agent_id: Mapped[str | None]
    created: Mapped[datetime | None]
    joined: Mapped[datetime | None]
    ended: Mapped[datetime | None]
    end_reason: Mapped[str | None]
    billed_duration: Mapped[str | None]
    billed_duration_seconds: Mapped[Decimal | None] = mapped_column(Numeric(12, 3))
    billing_status: Mapped[str | None]
    billed_side_input_tokens: Mapped[int | None]
    billed_side_output_tokens: Mapped[int | None]
    short_summary: Mapped[str | None]
    summary: Mapped[str | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=text("'{}'::jsonb")
    )
    raw: Mapped[dict[str, Any]]
    # The latest lifecycle webhook applied (call.started .. call.billed); older ones never win.
    last_event: Mapped[str | None] = mapped_column(String(50))
    transcript: Mapped[list[Any] | None]
    transcript_fetched_at: Mapped[datetime | None]
    analysis: Mapped[dict[str, Any] | None]
    analyzed_at: Mapped[datetime | None]
    # Time of the newest webhook event applied; an older event never overwrites newer state.
    last_event_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[CreatedAt]
