"""A call's transcript as callsync stores it in calls.transcript: the messages Ultravox
answers, shared by the Ultravox client, the enrichment and its analyzers."""

from __future__ import annotations

from pydantic import BaseModel


class Message(BaseModel):
    """The transcript fields of a `Message` (api-facts §1.4); tool and state details are dropped."""

    role: str = "MESSAGE_ROLE_UNSPECIFIED"
    text: str = ""
    medium: str | None = None
    callStageId: str | None = None
    callStageMessageIndex: int | None = None
    timespan: dict[str, str] | None = None
