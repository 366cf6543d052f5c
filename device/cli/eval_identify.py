"""`blinkpay eval identify`: open-set 1:N identification (device/evaluation/identify.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from device.cli._common import add_config_argument, config_from_args, print_json
from device.errors import BlinkpayError

HELP = "open-set 1:N identification"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gallery", type=Path, help="list of enrolled image paths (relative to --root)"
    )
    parser.add_argument("--probes", type=Path, help="list of PATH mated|nonmated")
    parser.add_argument(
        "--root", type=Path, required=True, help="folder the list paths are relative to"
    )
    parser.add_argument(
        "--make-lists",
        type=Path,
        metavar="OUT_DIR",
        help="write gallery.txt and probes.txt for an LFW-style --root (one image of each "
        "person with 2+ enrolled, the rest searched) and exit",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    from device.evaluation.gallery import lfw_lists, read_gallery, read_probes, write_lists

    if not args.root.is_dir():
        raise BlinkpayError(f"--root: not a folder: {args.root}")
    if args.make_lists:
        gallery, probes = lfw_lists(args.root)
        g, p = write_lists(gallery, probes, args.make_lists)
        print(f"wrote {g} ({len(gallery)} enrolled) and {p} ({len(probes)} probes)")
        return 0
    if args.gallery is None or args.probes is None:
        raise BlinkpayError("--gallery and --probes are required (or use --make-lists)")
    from device.evaluation.identify import identify
    from device.vision.pipeline import FacePipeline

    config = config_from_args(args)
    pipeline = FacePipeline.from_config(config.vision)
    gallery, probes = read_gallery(args.gallery), read_probes(args.probes)
    result = identify(pipeline, config.match, args.root, gallery, probes)
    if args.json:
        print_json(result)
    else:
        _print_text(result)
    return 0


def _print_text(result: dict[str, Any]) -> None:
    print(
        f"gallery {result['gallery']}, mated {result['mated']}, non-mated {result['nonmated']},"
        f" failed {result['failed']}\nrank-1 {result['rank1'] * 100:.2f}%"
    )
    for key in result["fnir_at_fpir"]:
        print(
            f"FNIR@FPIR={key}: {result['fnir_at_fpir'][key] * 100:.2f}%"
            f" (threshold {result['threshold_at_fpir'][key]:.4f})"
        )
    c = result["at_config"]
    print(
        f"shipped rule (threshold {c['threshold']}, margin {c['margin']}): FPIR"
        f" {c['fpir'] * 100:.2f}%, FNIR {c['fnir'] * 100:.2f}%; PIN asked for"
        f" {c['mated_ambiguous'] * 100:.1f}% of mated, {c['nonmated_ambiguous'] * 100:.1f}%"
        f" of non-mated\n{result['seconds']} s"
    )
