"""The rule-based analyzer's answers on fixed transcripts."""

from __future__ import annotations

from app.enrichment.analyzers import RuleAnalyzer
from app.enrichment.schemas import EMPTY_TRANSCRIPT, Analysis
from app.transcripts import Message


def said(*lines: str) -> list[Message]:
    """Alternate agent and caller lines, the agent first."""
    roles = ("MESSAGE_ROLE_AGENT", "MESSAGE_ROLE_USER")
    return [Message(role=roles[i % 2], text=line) for i, line in enumerate(lines)]


def analyze(messages: list[Message]) -> Analysis:
    return RuleAnalyzer().analyze(messages)


def test_an_empty_transcript_is_analysed_as_such() -> None:
    assert analyze([]) == EMPTY_TRANSCRIPT
    silent = [Message(role="MESSAGE_ROLE_USER", text="  "), Message(role="MESSAGE_ROLE_TOOL_CALL")]
    assert analyze(silent) == EMPTY_TRANSCRIPT
    assert EMPTY_TRANSCRIPT.outcome == "no_conversation"


def test_a_pledge_with_thanks() -> None:
    result = analyze(
        said(
            "Hello! I'm calling about our spring donation drive.",
            "Oh great, thanks for calling.",
            "Would you like to give this year?",
            "Yes, count me in. Can I pay by invoice?",
        )
    )
    assert result == Analysis(
        summary="A call of 4 messages (2 from the caller) about billing and donation; "
        "outcome: pledged.",
        sentiment=1.0,
        outcome="pledged",
        key_points=["Yes, count me in. Can I pay by invoice?"],
        topics=["billing", "donation"],
    )


def test_a_refusal_is_negative_and_not_interested() -> None:
    result = analyze(said("Hi, I'm calling about your policy renewal.", "No, not interested."))
    assert (result.outcome, result.sentiment, result.topics) == (
        "not_interested",
        -1.0,
        ["renewal"],
    )
    assert result.key_points == ["No, not interested."]


def test_a_callback_request_and_mixed_feelings() -> None:
    result = analyze(
        said(
            "Hello! I'm calling about a delivery.",
            "Sure, but this is a bad time.",
            "When would suit you?",
            "Can you call back tomorrow?",
        )
    )
    assert (result.outcome, result.sentiment) == ("callback_requested", 0.0)
    assert result.key_points == ["Can you call back tomorrow?"]
    assert result.topics == ["delivery"]


def test_only_the_callers_words_decide_and_tool_messages_are_ignored() -> None:
    messages = [
        Message(role="MESSAGE_ROLE_AGENT", text="Are you not interested? I'll donate for you."),
        Message(role="MESSAGE_ROLE_TOOL_CALL", text='{"refund": true}'),
        Message(role="MESSAGE_ROLE_USER", text="Okay."),
    ]
    result = analyze(messages)
    assert (result.outcome, result.sentiment, result.topics) == ("completed", 1.0, ["donation"])
    assert (
        result.summary
        == "A call of 2 messages (1 from the caller) about donation; outcome: completed."
    )


def test_the_same_transcript_gives_the_same_analysis() -> None:
    lines = said("Hello!", "Who is this?", "It's about your bill.", "Thanks, bye.")
    assert analyze(lines) == analyze(list(lines))
