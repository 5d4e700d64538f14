"""ElevenLabs' answers, as the campaigns read them (api-facts §2): the outbound call placed,
and a conversation with its transcript, metadata and analysis."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
