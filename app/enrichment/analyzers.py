"""Analyzers turn a call's transcript into an Analysis; the rule-based one is the default.

An empty transcript is not a failure: every analyzer answers it with EMPTY_TRANSCRIPT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.config import Settings
from app.enrichment.schemas import EMPTY_TRANSCRIPT, Analysis
from app.outcomes import WORD, Outcome, key_points, matched_outcome
from app.transcripts import Message

USER = "MESSAGE_ROLE_USER"
AGENT = "MESSAGE_ROLE_AGENT"

TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "billing": ("bill", "billing", "invoice", "charge", "payment"),
    "appointment": ("appointment", "schedule", "reschedule", "booking"),
    "renewal": ("renew", "renewal", "policy"),
    "delivery": ("delivery", "deliver", "shipping", "package"),
    "refund": ("refund", "money back"),
    "donation": ("donate", "donation", "pledge", "give"),
}
POSITIVE = frozenset(
    (
        "great",
        "good",
        "sure",
        "thanks",
        "thank",
        "yes",
        "perfect",
        "happy",
        "glad",
        "love",
        "helpful",
        "yeah",
        "okay",
        "ok",
    )
)
NEGATIVE = frozenset(
    (
        "no",
        "not",
        "never",
        "bad",
        "terrible",
        "annoyed",
        "angry",
        "unhappy",
        "cancel",
        "complaint",
        "wrong",
        "stop",
        "hate",
    )
)


class Analyzer(Protocol):
    """Something that can analyse a transcript; `name` is stored with its analysis."""

    name: str

    def analyze(self, messages: Sequence[Message]) -> Analysis: ...


class RuleAnalyzer:
    """Deterministic keyword rules: no network, the same answer for the same transcript."""

    name = "rules"

    def analyze(self, messages: Sequence[Message]) -> Analysis:
        spoken = [m for m in messages if m.role in (USER, AGENT) and m.text.strip()]
        if not spoken:
            return EMPTY_TRANSCRIPT
        said = [m.text.strip() for m in spoken if m.role == USER]
        caller = " ".join(said).lower()
        outcome = matched_outcome(said) or ("completed" if caller else "no_conversation")
        topics = _topics(" ".join(m.text for m in spoken).lower())
        return Analysis(
            summary=_summary(len(spoken), len(said), topics, outcome),
            sentiment=_sentiment(caller),
            outcome=outcome,
            key_points=key_points(said),
            topics=topics,
        )


def build_analyzer(settings: Settings) -> Analyzer:
    """The analyzer the settings choose (ANALYZER=rules|openai)."""
    if settings.analyzer == "openai":
        from app.enrichment.llm import ChatCompletionsAnalyzer

        assert settings.llm_api_key is not None  # noqa: S101 (the settings validator checks it)
        return ChatCompletionsAnalyzer(
            settings.llm_base_url,
            settings.llm_model,
            settings.llm_api_key.get_secret_value(),
            timeout=settings.llm_timeout_seconds,
            connections=settings.enrichment_concurrency,
        )
    return RuleAnalyzer()


def _topics(text: str) -> list[str]:
    words = set(WORD.findall(text))
    return [
        topic
        for topic, keys in TOPIC_WORDS.items()
        if any(key in text if " " in key else key in words for key in keys)
    ]


def _sentiment(caller: str) -> float:
    """(positive - negative) / (positive + negative) over the caller's words; 0 when neither."""
    words = WORD.findall(caller)
    good = sum(word in POSITIVE for word in words)
    bad = sum(word in NEGATIVE for word in words)
    return round((good - bad) / (good + bad), 2) if good + bad else 0.0


def _summary(spoken: int, said: int, topics: list[str], outcome: Outcome) -> str:
    about = f" about {' and '.join(topics)}" if topics else ""
    return (
        f"A call of {spoken} messages ({said} from the caller){about}; "
        f"outcome: {outcome.replace('_', ' ')}."
    )
