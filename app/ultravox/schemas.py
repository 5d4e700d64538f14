"""The historical-sync API bodies (start-historical-sync, get-sync-status)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

CALLS_PER_BATCH = 50  # seed 000: maximum calls fetched from Ultravox per batch
DEFAULT_MAX_CALLS = 100  # seed 000: default limit on imported calls per job


class StartSync(BaseModel):
    """Body of POST /api/historical-syncs."""

    model_config = ConfigDict(extra="forbid")

    date_from: datetime | None = None
    date_to: datetime
    max_calls: int = Field(default=DEFAULT_MAX_CALLS, ge=1, le=100_000)

    @field_validator("date_from", "date_to")
    @classmethod
    def _utc_unless_said(cls, value: datetime | None) -> datetime | None:
        """A datetime without an offset is read as UTC."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _range_is_ordered(self) -> StartSync:
        if self.date_from is not None and self.date_from >= self.date_to:
            raise ValueError("date_from must be before date_to")
        return self


class SyncJobOut(BaseModel):
    """One historical sync job as get-sync-status shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agency_id: uuid.UUID
    status: str
    date_from: datetime | None
    date_to: datetime
    max_calls: int | None
    total_calls: int | None
    processed_calls: int
    imported_calls: int
    skipped_calls: int
    failed_calls: int
    progress: float | None = None
    error_message: str | None
    last_error_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    last_activity_at: datetime | None
    # The agency's Ultravox work waits for its key (app.pauses): the provider's reason.
    needs_credentials: str | None = None

    @model_validator(mode="after")
    def _progress(self) -> SyncJobOut:
        if self.total_calls:
            self.progress = round(min(1.0, self.processed_calls / self.total_calls), 4)
        return self


class SyncJobPage(BaseModel):
    jobs: list[SyncJobOut]
    limit: int
    offset: int
    total: int
