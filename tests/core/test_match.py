"""The pure match decision: match, ambiguous (a PIN settles it) or unknown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device.core.config import MatchConfig
from device.core.match import (
    BELOW_PINLESS_THRESHOLD,
    BELOW_THRESHOLD,
    CLEAR_MATCH,
    CLOSE_RUNNER_UP,
    MAX_THRESHOLD,
    NO_CANDIDATES,
    decide,
    for_gallery,
)

CONFIG = MatchConfig(threshold=0.8, margin=0.05, pin_threshold=0.7, candidates=3)


def test_no_candidates_is_unknown() -> None:
    decision = decide([], CONFIG)
    assert (decision.kind, decision.token, decision.reason) == ("unknown", None, NO_CANDIDATES)


def test_clear_match_beats_threshold_and_margin() -> None:
    decision = decide([("b", 0.6), ("a", 0.9)], CONFIG)
    assert (decision.kind, decision.token, decision.candidates) == ("match", "a", ("a",))
    assert (decision.score, decision.runner_up, decision.reason) == (0.9, 0.6, CLEAR_MATCH)


def test_single_enrolled_user_above_threshold_matches() -> None:
    assert decide([("a", 0.81)], CONFIG).kind == "match"


def test_close_runner_up_is_ambiguous_with_both_candidates() -> None:
    decision = decide([("a", 0.9), ("b", 0.87), ("c", 0.5)], CONFIG)
    assert (decision.kind, decision.reason) == ("ambiguous", CLOSE_RUNNER_UP)
    assert decision.token == "a" and decision.candidates == ("a", "b")


def test_between_pin_threshold_and_threshold_is_ambiguous() -> None:
    decision = decide([("a", 0.75), ("b", 0.4)], CONFIG)
    assert (decision.kind, decision.reason, decision.candidates) == (
        "ambiguous",
        BELOW_PINLESS_THRESHOLD,
        ("a",),
    )


def test_below_pin_threshold_is_unknown_and_names_nobody() -> None:
    decision = decide([("a", 0.69), ("b", 0.68)], CONFIG)
    assert (decision.kind, decision.token, decision.candidates) == ("unknown", None, ())
    assert decision.reason == BELOW_THRESHOLD and decision.score == 0.69


def test_candidates_are_capped_and_best_first() -> None:
    ranked = [("d", 0.86), ("a", 0.9), ("c", 0.87), ("b", 0.88)]
    decision = decide(ranked, CONFIG)
    assert decision.candidates == ("a", "b", "c")


def test_runner_up_exactly_at_margin_is_a_match() -> None:
    decision = decide(
        [("a", 0.875), ("b", 0.75)], MatchConfig(threshold=0.8, margin=0.125, pin_threshold=0.7)
    )
    assert decision.kind == "match"


def test_with_zero_margin_the_best_is_still_the_pin_candidate() -> None:
    config = MatchConfig(threshold=0.8, margin=0.0, pin_threshold=0.7)
    decision = decide([("a", 0.75), ("b", 0.75)], config)
    assert (decision.kind, decision.candidates) == ("ambiguous", ("a",))
    assert decide([("a", 0.85), ("b", 0.85)], config).kind == "match"


def test_config_refuses_pin_threshold_above_threshold() -> None:
    with pytest.raises(ValueError):
        MatchConfig(threshold=0.8, pin_threshold=0.85)


scores = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=4), scores), max_size=6))
def test_decision_invariants(ranked: list[tuple[str, float]]) -> None:
    decision = decide(ranked, CONFIG)
    best = max((s for _, s in ranked), default=None)
    if decision.kind == "match":
        assert best is not None and best >= CONFIG.threshold
        others = sorted((s for _, s in ranked), reverse=True)[1:2]
        assert not others or best - others[0] >= CONFIG.margin
        assert decision.candidates == (decision.token,)
    elif decision.kind == "ambiguous":
        assert best is not None and best >= CONFIG.pin_threshold
        assert decision.token in decision.candidates
        assert 1 <= len(decision.candidates) <= CONFIG.candidates
    else:
        assert best is None or best < CONFIG.pin_threshold
        assert decision.candidates == ()


SIZED = MatchConfig(
    threshold=0.5,
    margin=0.05,
    pin_threshold=0.35,
    reference_gallery=1000,
    threshold_per_decade=0.04,
)


def test_threshold_rises_with_the_log_of_the_gallery_size() -> None:
    # at or below the reference size the calibrated threshold holds (never lowered)
    assert for_gallery(SIZED, 10) == SIZED and for_gallery(SIZED, 1000) == SIZED
    assert for_gallery(SIZED, 10_000).threshold == pytest.approx(0.54)
    assert for_gallery(SIZED, 100_000).threshold == pytest.approx(0.58)
    assert for_gallery(SIZED, 3_000).threshold == pytest.approx(0.5 + 0.04 * 0.47712, abs=1e-5)
    # only the PIN-less threshold moves; the PIN path and the margin stay
    big = for_gallery(SIZED, 1_000_000)
    assert (big.margin, big.pin_threshold, big.candidates) == (0.05, 0.35, 3)
    # capped, and off when the slope is 0
    steep = MatchConfig(threshold=0.9, pin_threshold=0.5, threshold_per_decade=0.5)
    assert for_gallery(steep, 10**9).threshold == MAX_THRESHOLD
    flat = MatchConfig(threshold=0.9, pin_threshold=0.5, threshold_per_decade=0.0)
    assert for_gallery(flat, 10**9) == flat


@given(st.integers(1, 10**8), st.integers(1, 10**8))
def test_a_larger_gallery_never_lowers_the_threshold(a: int, b: int) -> None:
    small, large = sorted((a, b))
    assert for_gallery(SIZED, small).threshold <= for_gallery(SIZED, large).threshold


def test_a_stranger_who_would_match_a_small_shard_is_asked_for_a_pin_in_a_large_one() -> None:
    ranked = [("a", 0.52), ("b", 0.30)]
    assert decide(ranked, for_gallery(SIZED, 500)).kind == "match"
    assert decide(ranked, for_gallery(SIZED, 50_000)).kind == "ambiguous"
