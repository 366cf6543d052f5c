"""The match decision: pure, from the top search candidates and the calibrated thresholds.

match:     the best score reaches `threshold` and beats the runner-up by `margin`.
ambiguous: a PIN must settle it: the best reaches `threshold` but others are within
           `margin`, or the best only reaches the lower `pin_threshold`. `candidates`
           lists who the PIN may pick among.
unknown:   nobody reaches `pin_threshold`.

The PIN-less `threshold` is a function of the gallery size (`for_gallery`): every enrolled
person is one more chance for a stranger to find a look-alike, so it rises with the log of
the shard's size above the size it was calibrated at. Calibrated values per shipped
embedder are in CALIBRATED (docs/matching.md says how they were chosen).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from device.core.config import MatchConfig

MatchKind = Literal["match", "ambiguous", "unknown"]

# [match] defaults per shipped embedder (device.vision.embedder names): the config's
# [match] section starts from the selected embedder's row, keys given override it.
CALIBRATED: dict[str, dict[str, float | int]] = {
    # benchmarks/calibrate_match.py on LFW view 1 DevTrain people (docs/matching.md):
    # PIN-less FPIR <= 0.15 % (the 0.3 % target / 2) at 804 to 1,767 enrolled
    "mobilefacenet": {
        "threshold": 0.65,
        "margin": 0.0,
        "pin_threshold": 0.50,
        "reference_gallery": 1000,
        "threshold_per_decade": 0.096,
    },
    # dlib's ResNet (issue 1's calibration, a fixed threshold at about 1,000 enrolled)
    "dlib": {
        "threshold": 0.95,
        "margin": 0.02,
        "pin_threshold": 0.90,
        "reference_gallery": 1000,
        "threshold_per_decade": 0.0,
    },
}
MAX_THRESHOLD = 0.999  # for_gallery never asks for more than this


def for_gallery(config: MatchConfig, gallery_size: int) -> MatchConfig:
    """The config in force for a gallery (shard) of `gallery_size` active templates: the
    PIN-less threshold plus threshold_per_decade x log10(size / reference_gallery) above
    the reference size, capped at MAX_THRESHOLD; unchanged at or below it."""
    if gallery_size <= config.reference_gallery or config.threshold_per_decade == 0.0:
        return config
    raised = config.threshold + config.threshold_per_decade * math.log10(
        gallery_size / config.reference_gallery
    )
    return replace(config, threshold=min(max(raised, config.threshold), MAX_THRESHOLD))


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
