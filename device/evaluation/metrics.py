"""Biometric accuracy metrics as pure numpy functions (no I/O).

Scores are similarities: higher means "more likely the same person". A pair or probe
is accepted when its score is >= the threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def _split(scores: Sequence[float], same: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, np.float64)
    y = np.asarray(same, bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError("scores and labels must be 1-D and the same length")
    return s[y], s[~y]


def roc(scores: Sequence[float], same: Sequence[bool]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, tar, thresholds), one point per distinct score, thresholds descending."""
    genuine, impostor = _split(scores, same)
    if not len(genuine) or not len(impostor):
        raise ValueError("need both same and different pairs")
    thresholds = np.unique(np.concatenate([genuine, impostor]))[::-1]
    g = np.sort(genuine)
    i = np.sort(impostor)
    tar = (len(g) - np.searchsorted(g, thresholds, side="left")) / len(g)
    far = (len(i) - np.searchsorted(i, thresholds, side="left")) / len(i)
    return far, tar, thresholds


def eer(scores: Sequence[float], same: Sequence[bool]) -> float:
    """Equal error rate: where FAR equals FRR (linear interpolation between ROC points)."""
    far, tar, _ = roc(scores, same)
    far = np.concatenate([[0.0], far])
    frr = np.concatenate([[1.0], 1.0 - tar])
    diff = far - frr  # increases from -1 towards >= 0 as the threshold drops
    k = int(np.argmax(diff >= 0))
    if k == 0:
        return float(far[0])
    d0, d1 = diff[k - 1], diff[k]
    t = d0 / (d0 - d1) if d1 != d0 else 0.0
    return float(far[k - 1] + t * (far[k] - far[k - 1]))


def tar_at_far(
    scores: Sequence[float], same: Sequence[bool], target_far: float
) -> tuple[float, float]:
    """(TAR, threshold) at the lowest threshold whose FAR <= target_far.
    The threshold is +inf (nothing accepted) when no threshold qualifies."""
    far, tar, thresholds = roc(scores, same)
    ok = np.flatnonzero(far <= target_far)
    if not len(ok):
        return 0.0, float("inf")
    k = ok[-1]
    return float(tar[k]), float(thresholds[k])


def best_accuracy(scores: Sequence[float], same: Sequence[bool]) -> tuple[float, float]:
    """(accuracy, threshold) at the threshold maximising accuracy on these pairs;
    the threshold is placed midway between neighbouring scores."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(same, bool)
    order = np.sort(np.unique(s))
    candidates = np.concatenate(
        [[order[0] - 1e-6], (order[:-1] + order[1:]) / 2, [order[-1] + 1e-6]]
    )
    accept = s[None, :] >= candidates[:, None]
    acc = (accept == y[None, :]).mean(axis=1)
    k = int(np.argmax(acc))
    return float(acc[k]), float(candidates[k])


def kfold_accuracy(
    scores: Sequence[float], same: Sequence[bool], folds: Sequence[int]
) -> tuple[float, float]:
    """LFW protocol: for each fold, pick the threshold on the other folds, measure on it.
    Returns (mean accuracy, standard deviation over folds)."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(same, bool)
    f = np.asarray(folds)
    accs = []
    for fold in np.unique(f):
        test = f == fold
        _, threshold = best_accuracy(s[~test], y[~test])
        accs.append(float(((s[test] >= threshold) == y[test]).mean()))
    return float(np.mean(accs)), float(np.std(accs))


@dataclass(frozen=True)
class Search:
    """One probe's search over the gallery: similarity to every enrolled identity."""

    identities: tuple[str, ...]  # gallery identities, same order as scores
    scores: np.ndarray
    truth: str | None  # the probe's identity when mated, None when not enrolled


def rank1(searches: Sequence[Search]) -> float:
    """Fraction of mated probes whose best-scoring identity is their own."""
    mated = [s for s in searches if s.truth is not None]
    if not mated:
        return 0.0
    hits = sum(s.identities[int(np.argmax(s.scores))] == s.truth for s in mated)
    return hits / len(mated)


# decide(identities, scores, threshold) -> accepted identity or None
Decider = Callable[[Sequence[str], np.ndarray, float], str | None]


def top1_decider(identities: Sequence[str], scores: np.ndarray, threshold: float) -> str | None:
    """Accept the best identity when its score reaches the threshold."""
    k = int(np.argmax(scores))
    return identities[k] if scores[k] >= threshold else None


def fnir_at_fpir(
    searches: Sequence[Search], target_fpir: float, decide: Decider = top1_decider
) -> tuple[float, float]:
    """Open-set 1:N: (FNIR, threshold) at the lowest threshold (swept over the observed
    top scores) whose FPIR <= target. FPIR: non-mated probes that returned anybody.
    FNIR: mated probes that did not return their own identity."""
    mated = [s for s in searches if s.truth is not None]
    nonmated = [s for s in searches if s.truth is None]
    if not mated or not nonmated:
        raise ValueError("need both mated and non-mated probes")
    candidates = np.concatenate([np.unique([float(np.max(s.scores)) for s in searches]), [np.inf]])

    def fpir(threshold: float) -> float:
        return sum(decide(s.identities, s.scores, threshold) is not None for s in nonmated) / len(
            nonmated
        )

    # a higher threshold never accepts more, so FPIR is monotone: bisect for the lowest
    # candidate that qualifies (the last candidate, +inf, always does)
    low, high = 0, len(candidates) - 1
    while low < high:
        mid = (low + high) // 2
        if fpir(candidates[mid]) <= target_fpir:
            high = mid
        else:
            low = mid + 1
    threshold = float(candidates[low])
    hits = sum(decide(s.identities, s.scores, threshold) == s.truth for s in mated)
    return 1.0 - hits / len(mated), threshold
