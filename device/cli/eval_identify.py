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
        "--distractors",
        type=Path,
        metavar="LIST",
        help="list of image paths (like --gallery) of more people to enrol who are never "
        "searched: results per gallery size, the gallery plus 1/4, 1/2 and all of them",
    )
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
    parser.add_argument(
        "--same-person",
        type=Path,
        metavar="LIST",
        help="lines of two folder names that are the same person (label errors in the "
        "lists): they count as one identity",
    )
    parser.add_argument(
        "--people-of",
        type=Path,
        metavar="PAIRS",
        help="with --make-lists: only the people an LFW pairs file names are enrolled and "
        "searched; the first image of everyone else goes to distractors.txt",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_config_argument(parser)


def run(args: argparse.Namespace) -> int:
    from device.evaluation.gallery import (
        identity_of,
        lfw_lists,
        read_gallery,
        read_probes,
        read_same_person,
        write_lists,
    )

    if not args.root.is_dir():
        raise BlinkpayError(f"--root: not a folder: {args.root}")
    if args.make_lists:
        people = None
        if args.people_of is not None:
            from device.evaluation.pairs import pair_images, read_pairs

            people = {identity_of(path) for path in pair_images(read_pairs(args.people_of))}
        gallery, probes, distractors = lfw_lists(args.root, people)
        written = write_lists(gallery, probes, args.make_lists, distractors)
        counts = (len(gallery), len(probes), len(distractors))
        print(", ".join(f"wrote {path} ({n})" for path, n in zip(written, counts, strict=False)))
        return 0
    if args.gallery is None or args.probes is None:
        raise BlinkpayError("--gallery and --probes are required (or use --make-lists)")
    from device.evaluation.identify import identify
    from device.vision.pipeline import FacePipeline

    config = config_from_args(args)
    pipeline = FacePipeline.from_config(config.vision)
    gallery, probes = read_gallery(args.gallery), read_probes(args.probes)
    distractors = read_gallery(args.distractors) if args.distractors else None
    same = read_same_person(args.same_person) if args.same_person else None
    result = identify(
        pipeline, config.match, args.root, gallery, probes, distractors, same_person=same
    )
    if args.json:
        print_json(result)
    else:
        _print_text(result)
    return 0


def _print_text(result: dict[str, Any]) -> None:
    print(
        f"gallery {result['gallery']} (+{result['distractors']} distractors), mated"
        f" {result['mated']}, non-mated {result['nonmated']}, failed {result['failed']}"
    )
    for block in result["by_gallery_size"]:
        c = block["at_config"]
        fnir = ", ".join(
            f"FNIR@FPIR={key} {value * 100:.2f}% (t {block['threshold_at_fpir'][key]:.4f})"
            for key, value in block["fnir_at_fpir"].items()
        )
        print(
            f"enrolled {block['gallery_size']}: rank-1 {block['rank1'] * 100:.2f}%; {fnir}\n"
            f"  shipped rule (threshold {c['threshold']:.4f}, margin {c['margin']}, pin"
            f" {c['pin_threshold']}): FPIR {c['fpir'] * 100:.2f}%, FNIR {c['fnir'] * 100:.2f}%;"
            f" PIN asked for {c['mated_ambiguous'] * 100:.1f}% of mated,"
            f" {c['nonmated_ambiguous'] * 100:.1f}% of non-mated"
        )
    print(f"{result['seconds']} s")
