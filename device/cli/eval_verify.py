"""`blinkpay eval verify`: 1:1 verification accuracy of the shipped models on pairs."""

from __future__ import annotations

import argparse
from pathlib import Path

from device.cli._common import add_config_argument, config_from_args, print_json
from device.errors import BlinkpayError

HELP = "1:1 verification accuracy on pairs"


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
    from device.evaluation.pairs import read_pairs
    from device.evaluation.verify import verify
    from device.vision.pipeline import FacePipeline

    if not args.images.is_dir():
        raise BlinkpayError(f"--images: not a folder: {args.images}")
    pipeline = FacePipeline.from_config(config_from_args(args).vision)
    result = verify(pipeline, read_pairs(args.pairs), args.images)
    accuracy, protocol, failed = result["accuracy"], result["accuracy_protocol"], result["failed"]
    tar2, tar3 = result["tar_at_far"]["0.01"], result["tar_at_far"]["0.001"]
    threshold3 = result["threshold_at_far_0.001"]
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
