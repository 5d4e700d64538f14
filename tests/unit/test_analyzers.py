"""The rule-based analyzer's answers on fixed transcripts."""

from __future__ import annotations

import pytest

from app.enrichment.analyzers import RuleAnalyzer, matched_outcome
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


@pytest.mark.parametrize(
    ("line", "outcome"),
    [
        # The seed's phrases.
        ("I will pledge fifty dollars.", "pledged"),
        ("Sure, I'll pledge.", "pledged"),
        ("Count me in!", "pledged"),
        ("I'll donate today.", "donated"),
        ("I will donate twenty.", "donated"),
        ("I'd like to donate.", "donated"),
        ("I donated last year and I'd donate again.", "donated"),
        ("Not interested.", "not_interested"),
        ("No thanks.", "not_interested"),
        ("Not right now.", "not_interested"),
        # A negation a few words before the commitment undoes it.
        ("I don't want to donate.", "not_interested"),
        ("I'm not going to pledge.", "not_interested"),
        ("I won't give.", "not_interested"),
        ("I won\u2019t give.", "not_interested"),  # a typographic apostrophe
        ("I would never donate to you people.", "not_interested"),
        ("never donate", "not_interested"),
        ("I will not pledge anything.", "not_interested"),
        ("I don't think I will pledge.", "not_interested"),
        ("Don't count me in.", "not_interested"),
        ("I can't donate this year.", "not_interested"),
        ("I'm not donating.", "not_interested"),
        ("No, I cannot contribute.", "not_interested"),
        # ...but not from another clause, nor from far away.
        ("No, I'll pledge.", "pledged"),
        ("No problem, count me in.", "pledged"),
        ("I won't pledge monthly, but I'll donate once.", "donated"),
        ("Not right now, but I'd like to donate later.", "donated"),
        ("I'm not sure why but I'd like to donate.", "donated"),
        ("It is not a problem for me and I'd like to donate.", "donated"),
        # No commitment at all.
        ("Who is this?", None),
        ("I can give you my email.", None),
    ],
)
def test_the_outcome_respects_a_negation_before_the_commitment(
    line: str, outcome: str | None
) -> None:
    assert matched_outcome([line]) == outcome


def test_a_negation_does_not_reach_into_the_next_line() -> None:
    assert matched_outcome(["No", "I'll donate"]) == "donated"
    assert matched_outcome(["I'll donate", "No thanks"]) == "donated"  # the first outcome wins
