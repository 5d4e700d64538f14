"""Ultravox's payloads (api-facts §1): the pages of calls and of a call's messages, read from
their own bytes."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from app.transcripts import Message
from app.validation import every_error


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
