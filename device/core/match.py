"""The match decision: pure, from the top search candidates and the calibrated thresholds.

match:     the best score reaches `threshold` and beats the runner-up by `margin`.
ambiguous: a PIN must settle it: the best reaches `threshold` but others are within
           `margin`, or the best only reaches the lower `pin_threshold`. `candidates`
           lists who the PIN may pick among.
unknown:   nobody reaches `pin_threshold`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from device.core.config import MatchConfig

MatchKind = Literal["match", "ambiguous", "unknown"]

# Reason codes
NO_CANDIDATES = "no_candidates"
BELOW_THRESHOLD = "below_threshold"
CLEAR_MATCH = "clear_match"
CLOSE_RUNNER_UP = "close_runner_up"
BELOW_PINLESS_THRESHOLD = "below_pinless_threshold"


@dataclass(frozen=True)
class MatchDecision:
    kind: MatchKind
    token: str | None  # the best candidate (None when unknown)
    score: float | None
    runner_up: float | None
    candidates: tuple[str, ...]  # tokens a PIN may pick among, best first
    reason: str


def decide(top_candidates: Sequence[tuple[str, float]], config: MatchConfig) -> MatchDecision:
    """top_candidates: (token, cosine) of active accounts, any order."""
    ranked = sorted(top_candidates, key=lambda item: item[1], reverse=True)
    if not ranked:
        return MatchDecision("unknown", None, None, None, (), NO_CANDIDATES)
    best_token, best = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else None
    if best < config.pin_threshold:
        return MatchDecision("unknown", None, best, runner_up, (), BELOW_THRESHOLD)
    # The best is always a candidate (also with margin 0); others must be within the margin.
    others = [
        token
        for token, score in ranked[1 : config.candidates]
        if score >= config.pin_threshold and best - score < config.margin
    ]
    candidates = (best_token, *others)
    if best < config.threshold:
        return MatchDecision(
            "ambiguous", best_token, best, runner_up, candidates, BELOW_PINLESS_THRESHOLD
        )
    if runner_up is not None and best - runner_up < config.margin:
        return MatchDecision("ambiguous", best_token, best, runner_up, candidates, CLOSE_RUNNER_UP)
    return MatchDecision("match", best_token, best, runner_up, (best_token,), CLEAR_MATCH)
