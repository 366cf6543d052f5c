"""`blinkpay eval identify`: open-set 1:N identification (rank-1, FNIR at FPIR).

Besides the threshold sweep, it reports what the shipped match rule does
(device.core.match.decide with the config's MatchConfig): how often a non-enrolled
searcher would ride PIN-less as somebody (FPIR) and how often an enrolled one would not
get a PIN-less match as themselves (FNIR).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from device.cli._common import add_config_argument, config_from_args, print_json
from device.errors import BlinkpayError

if TYPE_CHECKING:
    from device.core.config import MatchConfig
    from device.evaluation.gallery import Probe
    from device.evaluation.metrics import Search

HELP = "open-set 1:N identification"
FPIRS = ("0.01", "0.003")


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
    result = evaluate(args, read_gallery(args.gallery), read_probes(args.probes))
    if args.json:
        print_json(result)
    else:
        _print_text(result)
    return 0


def evaluate(args: argparse.Namespace, gallery: list[str], probes: list[Probe]) -> dict[str, Any]:
    from device.evaluation.evaluation import embed_files
    from device.evaluation.gallery import identity_of
    from device.evaluation.metrics import Search, fnir_at_fpir, rank1
    from device.evaluation.progress import Progress
    from device.vision.pipeline import FacePipeline
    from device.vision.templates import TemplateError, fuse

    config = config_from_args(args)
    pipeline = FacePipeline.from_config(config.vision)
    start = time.monotonic()
    paths = [args.root / g for g in gallery] + [args.root / p.path for p in probes]
    progress = Progress(len(paths), "embedding")
    vectors = embed_files(pipeline, paths, progress)
    progress.close()
    by_identity: dict[str, list[np.ndarray]] = {}
    for g in gallery:
        vector = vectors[args.root / g]
        if vector is not None:
            by_identity.setdefault(identity_of(g), []).append(vector)
    enrolled: dict[str, np.ndarray] = {}
    for identity, vecs in by_identity.items():
        try:
            enrolled[identity] = fuse(vecs, pipeline.embedder_version).vector
        except TemplateError:
            continue
    if not enrolled:
        raise BlinkpayError("no gallery image gave a usable face")
    identities = tuple(enrolled)
    matrix = np.stack([enrolled[i] for i in identities])
    searches: list[Search] = []
    failed = 0
    for probe in probes:
        vector = vectors[args.root / probe.path]
        if vector is None:
            failed += 1
            continue
        truth = identity_of(probe.path) if probe.mated else None
        # a mated probe whose identity failed to enrol can only be a miss: keep it mated
        searches.append(Search(identities, matrix @ vector, truth))
    if not any(s.truth is None for s in searches) or not any(s.truth for s in searches):
        raise BlinkpayError("need both mated and non-mated probes with a usable face")
    fnir, thresholds = {}, {}
    for key in FPIRS:
        fnir[key], thresholds[key] = fnir_at_fpir(searches, float(key))
    return {
        "gallery": len(identities),
        "gallery_failed": len(set(map(identity_of, gallery))) - len(identities),
        "mated": sum(s.truth is not None for s in searches),
        "nonmated": sum(s.truth is None for s in searches),
        "failed": failed,
        "rank1": rank1(searches),
        "fnir_at_fpir": fnir,
        "threshold_at_fpir": thresholds,
        "at_config": at_config(searches, config.match),
        "embedder_version": pipeline.embedder_version,
        "seconds": round(time.monotonic() - start, 2),
    }


def at_config(searches: Sequence[Search], match: MatchConfig) -> dict[str, float]:
    """Outcome of the terminal's own rule: PIN-less "match" counts as an identification;
    "ambiguous" (a PIN settles it) does not, and is reported separately."""
    from device.core.match import decide

    mated = [s for s in searches if s.truth is not None]
    nonmated = [s for s in searches if s.truth is None]
    false_matches = mated_hits = mated_pin = nonmated_pin = 0
    for search in searches:
        decision = decide(list(zip(search.identities, search.scores.tolist(), strict=True)), match)
        if search.truth is None:
            false_matches += decision.kind == "match"
            nonmated_pin += decision.kind == "ambiguous"
        else:
            mated_hits += decision.kind == "match" and decision.token == search.truth
            mated_pin += decision.kind == "ambiguous"
    return {
        "threshold": match.threshold,
        "margin": match.margin,
        "pin_threshold": match.pin_threshold,
        "fpir": false_matches / len(nonmated),
        "fnir": 1.0 - mated_hits / len(mated),
        "mated_ambiguous": mated_pin / len(mated),
        "nonmated_ambiguous": nonmated_pin / len(nonmated),
    }


def _print_text(result: dict[str, Any]) -> None:
    print(
        f"gallery {result['gallery']}, mated {result['mated']}, non-mated {result['nonmated']},"
        f" failed {result['failed']}\nrank-1 {result['rank1'] * 100:.2f}%"
    )
    for key in FPIRS:
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
