"""Analyzers turn a call's transcript into an Analysis; the rule-based one is the default.

An empty transcript is not a failure: every analyzer answers it with EMPTY_TRANSCRIPT.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from app.config import Settings
from app.enrichment.schemas import EMPTY_TRANSCRIPT, Analysis, Outcome
from app.transcripts import Message

USER = "MESSAGE_ROLE_USER"
AGENT = "MESSAGE_ROLE_AGENT"

# The caller's words that decide the outcome, checked in this order (the first three are
# seed 003's outcome detection patterns).
OUTCOME_PHRASES: tuple[tuple[Outcome, tuple[str, ...]], ...] = (
    ("pledged", ("i will pledge", "i'll pledge", "count me in")),
    ("donated", ("i'll donate", "i will donate", "donate")),
    ("not_interested", ("not interested", "no thanks", "not right now", "stop calling")),
    ("callback_requested", ("call back", "call me back", "call me later", "tomorrow")),
)
# A commitment is undone by a negation at most this many words before it in its clause ("I
# don't want to donate", "I'm not going to pledge", "never donate"), and the caller is then
# not interested. A clause ends at punctuation or "but", so "No, I'll pledge" still pledges.
COMMITMENTS: frozenset[Outcome] = frozenset(("pledged", "donated"))
COMMITMENT_STEMS = "pledg|donat|giv|contribut"  # pledge, donate, give, contribute and kin
NEGATION_REACH = 4
NEGATIONS = frozenset(("not", "no", "never", "cannot", "dont", "wont", "cant", "nor"))
TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "billing": ("bill", "billing", "invoice", "charge", "payment"),
    "appointment": ("appointment", "schedule", "reschedule", "booking"),
    "renewal": ("renew", "renewal", "policy"),
    "delivery": ("delivery", "deliver", "shipping", "package"),
    "refund": ("refund", "money back"),
    "donation": ("donate", "donation", "pledge", "give"),
}
POSITIVE = frozenset(
    ("great", "good", "sure", "thanks", "thank", "yes", "perfect", "happy", "glad", "love",
     "helpful", "yeah", "okay", "ok")
)  # fmt: skip
NEGATIVE = frozenset(
    ("no", "not", "never", "bad", "terrible", "annoyed", "angry", "unhappy", "cancel",
     "complaint", "wrong", "stop", "hate")
)  # fmt: skip
MAX_KEY_POINTS = 5
_WORD = re.compile(r"[a-z']+")
_CLAUSE_END = re.compile(r"[.,;:!?]|\bbut\b")
# One group per outcome, named after it, then "commitment": a commitment word outside them.
_OUTCOMES = re.compile(
    r"\b(?:"
    + "|".join(
        f"(?P<{outcome}>{'|'.join(map(re.escape, phrases))})"
        for outcome, phrases in OUTCOME_PHRASES
    )
    + f"|(?P<commitment>{COMMITMENT_STEMS}))"
)
_NEGATABLE = frozenset((*COMMITMENTS, "commitment"))


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


def matched_outcome(said: Sequence[str]) -> Outcome | None:
    """The first outcome whose phrases the caller's lines contain, case-insensitively; a
    negated commitment counts as not interested (see NEGATION_REACH)."""
    found: set[str] = set()
    for line in said:
        lowered = line.lower().replace("\u2019", "'")
        for match in _OUTCOMES.finditer(lowered):
            outcome = str(match.lastgroup)
            if outcome in _NEGATABLE and _negated(lowered[: match.start()]):
                outcome = "not_interested"  # "I don't want to donate", "I won't give"
            found.add(outcome)
    return next((outcome for outcome, _ in OUTCOME_PHRASES if outcome in found), None)


def _negated(before: str) -> bool:
    """Whether the last few words of the clause before a commitment hold a negation."""
    words = _WORD.findall(_CLAUSE_END.split(before)[-1])[-NEGATION_REACH:]
    return any(word in NEGATIONS or word.endswith("n't") for word in words)


def key_points(said: list[str]) -> list[str]:
    """The caller's lines worth keeping: questions and commitments, the first few."""
    return [line for line in said if _is_key_point(line)][:MAX_KEY_POINTS]


def _topics(text: str) -> list[str]:
    words = set(_WORD.findall(text))
    return [
        topic
        for topic, keys in TOPIC_WORDS.items()
        if any(key in text if " " in key else key in words for key in keys)
    ]


def _sentiment(caller: str) -> float:
    """(positive - negative) / (positive + negative) over the caller's words; 0 when neither."""
    words = _WORD.findall(caller)
    good = sum(word in POSITIVE for word in words)
    bad = sum(word in NEGATIVE for word in words)
    return round((good - bad) / (good + bad), 2) if good + bad else 0.0


def _is_key_point(line: str) -> bool:
    lowered = line.lower()
    return line.endswith("?") or any(
        phrase in lowered for _, phrases in OUTCOME_PHRASES for phrase in phrases
    )


def _summary(spoken: int, said: int, topics: list[str], outcome: Outcome) -> str:
    about = f" about {' and '.join(topics)}" if topics else ""
    return (
        f"A call of {spoken} messages ({said} from the caller){about}; "
        f"outcome: {outcome.replace('_', ' ')}."
    )
