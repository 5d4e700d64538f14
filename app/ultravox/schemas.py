"""Ultravox payloads (api-facts §1) and the historical-sync API bodies."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from app.transcripts import Message
from app.validation import every_error

CALLS_PER_BATCH = 50  # seed 000: maximum calls fetched from Ultravox per batch
DEFAULT_MAX_CALLS = 100  # seed 000: default limit on imported calls per job


class UltravoxCall(BaseModel):
    """The fields of a Call we rely on; the whole object is stored as it came (Page.body), so
    the others are not kept here."""

    callId: uuid.UUID
    created: datetime
    ended: datetime | None = None


class Page(BaseModel):
    """A page of a list endpoint, validated, with the JSON it was read from."""

    _body: bytes = PrivateAttr(b"")

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        page = cls.model_validate_json(body)
        page._body = body
        return page

    @property
    def body(self) -> bytes:
        """The page as it came: its objects can be stored without serialising them again."""
        return self._body


@dataclass(frozen=True)
class BadCall:
    """A call skipped and counted as failed: a record that is not a Call we can read, or (in
    the service) one the database refused."""

    call_id: str | None  # its callId as it came, if it has one
    reason: str


class CallsPage(Page):
    """`PaginatedCallList`: follow `next` until it is null.

    A record that is not a readable Call does not spoil the page: it is left out of `results`
    (and of `body`) and kept in `bad`.
    """

    next: str | None = None
    previous: str | None = None
    results: list[UltravoxCall]
    total: int | None = None
    _bad: list[BadCall] = PrivateAttr(default_factory=list)

    @classmethod
    def from_body(cls, body: bytes) -> Self:
        try:
            return super().from_body(body)
        except ValidationError:
            return cls._record_by_record(body)  # slower, and only for a page with a bad record

    @classmethod
    def _record_by_record(cls, body: bytes) -> Self:
        """The page without its bad records; a bad envelope raises ValidationError."""
        envelope = _Envelope.model_validate_json(body)
        good: list[Any] = []
        page = cls.model_validate({**(envelope.model_extra or {}), "results": []})
        for record in envelope.results:
            try:
                page.results.append(UltravoxCall.model_validate(record))
            except ValidationError as error:
                page._bad.append(BadCall(_call_id(record), every_error(error, root="record")))
            else:
                good.append(record)
        page._body = json.dumps({"results": good}).encode()
        return page

    @property
    def bad(self) -> list[BadCall]:
        return self._bad

    @property
    def received(self) -> int:
        """How many records the page held, good and bad: what a full page is measured by."""
        return len(self.results) + len(self._bad)


class _Envelope(BaseModel):
    """A list page whose records are not looked at; its other fields are kept as they came."""

    model_config = ConfigDict(extra="allow")

    results: list[Any]


def _call_id(record: Any) -> str | None:
    call_id = record.get("callId") if isinstance(record, dict) else None
    return None if call_id is None else str(call_id)[:100]


class MessagesPage(Page):
    """One page of `GET /api/calls/{id}/messages`: the same envelope as the calls list."""

    next: str | None = None
    previous: str | None = None
    results: list[Message]
    total: int | None = None


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
