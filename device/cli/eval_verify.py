"""`blinkpay eval verify`: 1:1 verification accuracy of the shipped models on pairs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from device.cli._common import add_config_argument, config_from_args, print_json
from device.errors import BlinkpayError

HELP = "1:1 verification accuracy on pairs"
FAILED_SCORE = -1.0  # a pair with no usable face counts as "different"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pairs", type=Path, required=True, help="LFW pairs file or TSV a<TAB>b<TAB>0|1"
    )
    parser.add_argument(
        "--images", type=Path, required=True, help="folder the pair paths are relative to"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    from device.evaluation.evaluation import embed_files
    from device.evaluation.metrics import best_accuracy, eer, kfold_accuracy, tar_at_far
    from device.evaluation.pairs import read_pairs
    from device.evaluation.progress import Progress
    from device.vision.pipeline import FacePipeline

    if not args.images.is_dir():
        raise BlinkpayError(f"--images: not a folder: {args.images}")
    pairs = read_pairs(args.pairs)
    pipeline = FacePipeline.from_config(config_from_args(args).vision)
    start = time.monotonic()
    paths = sorted({args.images / p.a for p in pairs} | {args.images / p.b for p in pairs})
    progress = Progress(len(paths), "embedding")
    vectors = embed_files(pipeline, paths, progress)
    progress.close()
    scores, same, folds, failed = [], [], [], 0
    for pair in pairs:
        a, b = vectors[args.images / pair.a], vectors[args.images / pair.b]
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
    if args.json:
        print_json(result)
    else:
        print(
            f"pairs {result['pairs']} (same {result['same']}, different {result['different']},"
            f" failed {failed})\naccuracy {accuracy * 100:.2f}% ({protocol})"
            f"  EER {result['eer'] * 100:.2f}%\nTAR@FAR=1% {tar2 * 100:.2f}%"
            f"  TAR@FAR=0.1% {tar3 * 100:.2f}% (threshold {threshold3:.4f})"
            f"\n{result['seconds']} s"
        )
    return 0
