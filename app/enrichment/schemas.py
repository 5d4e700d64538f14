"""What an analysis of a call says, whichever analyzer made it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.outcomes import Outcome


class Analysis(BaseModel):
    """summary, sentiment (-1 negative .. 1 positive), outcome, key points and topics."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=2000)
    sentiment: float = Field(ge=-1, le=1)
    outcome: Outcome
    key_points: list[str] = Field(max_length=20)
    topics: list[str] = Field(max_length=20)


EMPTY_TRANSCRIPT = Analysis(
    summary="The transcript is empty: nothing was said on this call.",
    sentiment=0.0,
    outcome="no_conversation",
    key_points=[],
    topics=[],
)
