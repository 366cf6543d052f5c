"""1:1 verification accuracy of the terminal's own pipeline on pairs (LFW protocol)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from device.evaluation.embedding import embed_files
from device.evaluation.metrics import best_accuracy, eer, kfold_accuracy, tar_at_far
from device.evaluation.pairs import Pair
from device.evaluation.progress import Progress
from device.vision.pipeline import FacePipeline

FAILED_SCORE = -1.0  # a pair with no usable face counts as "different"


def verify(pipeline: FacePipeline, pairs: Sequence[Pair], images: Path) -> dict[str, Any]:
    """Accuracy (k-fold when the pairs carry folds), EER and TAR at FAR 1 % and 0.1 %."""
    start = time.monotonic()
    paths = sorted({images / p.a for p in pairs} | {images / p.b for p in pairs})
    progress = Progress(len(paths), "embedding")
    vectors = embed_files(pipeline, paths, progress)
    progress.close()
    scores, same, folds, failed = [], [], [], 0
    for pair in pairs:
        a, b = vectors[images / pair.a], vectors[images / pair.b]
        if a is None or b is None:
            failed += 1
        scores.append(FAILED_SCORE if a is None or b is None else float(a @ b))
        same.append(pair.same)
        folds.append(pair.fold)
    if all(f is not None for f in folds):
        accuracy, _ = kfold_accuracy(scores, same, folds)
        protocol = "10-fold" if len(set(folds)) == 10 else f"{len(set(folds))}-fold"
    else:
        accuracy, _ = best_accuracy(scores, same)
        protocol = "best threshold"
    tar2, _ = tar_at_far(scores, same, 0.01)
    tar3, threshold3 = tar_at_far(scores, same, 0.001)
    result = {
        "pairs": len(pairs),
        "same": sum(same),
        "different": len(pairs) - sum(same),
        "failed": failed,
        "accuracy": accuracy,
        "accuracy_protocol": protocol,
        "eer": eer(scores, same),
        "tar_at_far": {"0.01": tar2, "0.001": tar3},
        "threshold_at_far_0.001": threshold3,
        "embedder_version": pipeline.embedder_version,
        "seconds": round(time.monotonic() - start, 2),
    }
    return result
