"""Declarative base, PostgreSQL's default constraint names, and the shared enum types."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar

from sqlalchemy import DateTime, MetaData, Text, text
from sqlalchemy.dialects.postgresql import ENUM, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, mapped_column

# PostgreSQL's own names (webhook_queue_pkey, webhook_queue_agency_id_fkey, ..._key), which the
# seeds use; checks and indexes are named explicitly where they are declared.
NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(constraint_name)s",
    "ix": "%(constraint_name)s",
}

# The queue rows a lost run touched that are due again: a claim takes each alone (app.queue).
SUSPECT = "lost_runs > 0 AND status IN ('pending', 'failed') AND {attempts} < {max_attempts}"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        str: Text(),
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
        uuid.UUID: UUID(as_uuid=True),
    }


def pg_enum(enum_class: type[enum.Enum], name: str) -> ENUM:
    """A PostgreSQL enum created by the migrations, stored by value."""
    return ENUM(
        enum_class,
        name=name,
        create_type=False,
        values_callable=lambda members: [member.value for member in members],
    )


class SyncJobStatus(enum.StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"  # migration 0003: cancel-historical-sync's end state


class ProcessingStatus(enum.StrEnum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"


class EnrichmentType(enum.StrEnum):
    transcript = "transcript"
    analysis = "analysis"


class AgencyRole(enum.StrEnum):
    owner = "owner"
    admin = "admin"
    member = "member"


UuidPk = Annotated[
    uuid.UUID, mapped_column(primary_key=True, server_default=text("uuid_generate_v4()"))
]
CreatedAt = Annotated[datetime, mapped_column(server_default=text("now()"))]
