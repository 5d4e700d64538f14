"""The outcome read from a caller's lines, as the analyzer and the conversation sync read it."""

from __future__ import annotations

import pytest

from app.outcomes import matched_outcome


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
