"""Accuracy metrics on hand-made scores whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from device.evaluation.metrics import (
    Search,
    best_accuracy,
    eer,
    fnir_at_fpir,
    kfold_accuracy,
    rank1,
    roc,
    tar_at_far,
)

GENUINE = [0.9, 0.8, 0.7, 0.4]
IMPOSTOR = [0.6, 0.3, 0.2, 0.1]
SCORES = GENUINE + IMPOSTOR
SAME = [True] * 4 + [False] * 4


def test_roc_points() -> None:
    far, tar, thresholds = roc(SCORES, SAME)
    assert thresholds[0] == 0.9 and thresholds[-1] == 0.1
    k = list(thresholds).index(0.6)
    assert (far[k], tar[k]) == (0.25, 0.75)


def test_best_accuracy_and_threshold() -> None:
    accuracy, threshold = best_accuracy(SCORES, SAME)
    assert accuracy == pytest.approx(7 / 8)
    assert 0.6 < threshold <= 0.7 or 0.3 < threshold <= 0.4


def test_eer_of_separable_and_overlapping_scores() -> None:
    assert eer([0.9, 0.8, 0.2, 0.1], [True, True, False, False]) == pytest.approx(0.0)
    assert eer(SCORES, SAME) == pytest.approx(0.25)


def test_tar_at_far() -> None:
    assert tar_at_far(SCORES, SAME, 0.0) == (0.75, 0.7)
    assert tar_at_far(SCORES, SAME, 0.25) == (1.0, 0.4)


def test_kfold_picks_the_threshold_on_the_other_folds() -> None:
    rng = np.random.default_rng(0)
    genuine = rng.normal(0.8, 0.05, 100)
    impostor = rng.normal(0.3, 0.05, 100)
    scores = np.concatenate([genuine, impostor])
    same = [True] * 100 + [False] * 100
    folds = [i % 10 for i in range(200)]
    mean, std = kfold_accuracy(scores, same, folds)
    assert mean == 1.0 and std == 0.0


def test_open_set_rank1_and_fnir_at_fpir() -> None:
    ids = ("ann", "bob", "cat")
    searches = [
        Search(ids, np.array([0.9, 0.2, 0.1]), "ann"),
        Search(ids, np.array([0.3, 0.7, 0.2]), "bob"),
        Search(ids, np.array([0.6, 0.1, 0.5]), "cat"),  # rank-1 miss
        Search(ids, np.array([0.65, 0.1, 0.1]), None),
        Search(ids, np.array([0.2, 0.4, 0.1]), None),
    ]
    assert rank1(searches) == pytest.approx(2 / 3)
    # FPIR 0: threshold above the strongest non-mated score 0.65 -> only ann (0.9) and bob (0.7)
    fnir, threshold = fnir_at_fpir(searches, 0.0)
    assert threshold == pytest.approx(0.7) and fnir == pytest.approx(1 / 3)
    fnir, threshold = fnir_at_fpir(searches, 0.5)
    assert threshold == pytest.approx(0.6) and fnir == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="mated and non-mated"):
        fnir_at_fpir(searches[:3], 0.01)
