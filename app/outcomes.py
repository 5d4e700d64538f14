"""A call's outcome from the caller's words: the phrases, the negations that undo a
commitment, and the lines worth keeping. Shared by the enrichment analyzer and the campaigns'
conversation sync."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

Outcome = Literal[
    "no_conversation",  # nobody said anything: the transcript is empty
    "pledged",  # the seeds' commitment phrases ("I will pledge", "count me in")
    "donated",
    "not_interested",
    "callback_requested",
    "completed",  # a conversation took place, with none of the outcomes above
]

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
MAX_KEY_POINTS = 5
WORD = re.compile(r"[a-z']+")
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
    words = WORD.findall(_CLAUSE_END.split(before)[-1])[-NEGATION_REACH:]
    return any(word in NEGATIONS or word.endswith("n't") for word in words)


def key_points(said: list[str]) -> list[str]:
    """The caller's lines worth keeping: questions and commitments, the first few."""
    return [line for line in said if _is_key_point(line)][:MAX_KEY_POINTS]


def _is_key_point(line: str) -> bool:
    lowered = line.lower()
    return line.endswith("?") or any(
        phrase in lowered for _, phrases in OUTCOME_PHRASES for phrase in phrases
    )
