"""ElevenLabs' answers, as the campaigns read them (api-facts §2): the outbound call placed,
and a conversation with its transcript, metadata and analysis; and a line of a leads file."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.phones import e164


class OutboundCall(BaseModel):
    """`TwilioOutboundCallResponse`: callSid is camelCase on the wire."""

    success: bool
    message: str
    conversation_id: str | None = None
    call_sid: str | None = Field(default=None, alias="callSid")


class _Read(BaseModel):
    """An answer, or a part of one: the fields we read, the others ignored."""

    model_config = ConfigDict(extra="ignore")


class Turn(_Read):
    role: str
    message: str | None = None
    time_in_call_secs: int | None = None


class PhoneCall(_Read):
    """`metadata.phone_call`, discriminated on `type` (twilio, sip_trunking, exotel)."""

    type: str
    call_sid: str | None = None


class ConversationMetadata(_Read):
    start_time_unix_secs: int
    call_duration_secs: int
    accepted_time_unix_secs: int | None = None
    termination_reason: str | None = None
    main_language: str | None = None
    cost: int | None = None
    error: Any = None
    phone_call: PhoneCall | None = None


class EvaluationResult(_Read):
    result: str  # success, failure or unknown


class DataCollectionResult(_Read):
    value: Any = None


class ConversationAnalysis(_Read):
    """Present once the call is analysed (status done)."""

    call_successful: str
    transcript_summary: str
    call_summary_title: str | None = None
    evaluation_criteria_results: dict[str, EvaluationResult] = {}
    data_collection_results: dict[str, DataCollectionResult] = {}


class ConversationDetails(_Read):
    """`GetConversationResponseModel`, the fields the sync reads; status moves from initiated
    through in-progress and processing to done (or failed)."""

    conversation_id: str
    agent_id: str
    status: str
    transcript: list[Turn] = []
    metadata: ConversationMetadata
    analysis: ConversationAnalysis | None = None


CSV_SOURCE = "csv"  # leads.source of the leads loaded from a file


class CsvLead(BaseModel):
    """One line of a leads file. Only `phone` is required; a number that is not E.164 and
    cannot be read as one is kept as given, and the campaign skips it with the reason."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    phone: str
    source_id: str | None = None  # the lead's id in the file's own system; else the phone
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    company: str | None = None
    timezone: str | None = None
    do_not_call: bool = False
    quality_rating: int | None = None
    lead_score: int | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_missing(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown timezone {value!r}") from None
        return value

    def as_lead(self) -> dict[str, Any]:
        phone = e164(self.phone)
        values = self.model_dump(exclude={"source_id"})
        email = values["email"]
        return values | {
            "source": CSV_SOURCE,
            "source_id": self.source_id or phone,
            "phone": phone,
            "email": email.lower() if email else None,
            "do_not_call": self.do_not_call,
        }
