"""`blinkpay eval liveness`: the fused liveness decision (blink AND passive cue) on clips and
replayed stills as ISO/IEC 30107-3 figures (APCER per attack species, BPCER) with each
cue's score per sample; samples and scoring: device/evaluation/liveness.py.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from device.cli._common import add_config_argument, config_from_args, print_json
from device.errors import BlinkpayError
from device.paths import SHARED_DATA_DIR

HELP = "liveness APCER per species / BPCER, per-cue scores"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="one folder: labels from any SOURCES.tsv in it, else clips are live and "
        f"stills are attacks (default {SHARED_DATA_DIR / 'liveness'})",
    )
    parser.add_argument("--live", type=Path, action="append", default=[], help="bona fide DIR")
    parser.add_argument("--attack", type=Path, action="append", default=[], help="attack DIR")
    parser.add_argument(
        "--frames", type=int, default=50, help="frames per replayed still (default 50)"
    )
    parser.add_argument("--limit", type=int, default=0, help="at most N samples per class")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    add_config_argument(parser)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _passive_text(passive: dict[str, Any] | None) -> str:
    if not passive:
        return "passive -"
    mean = passive["mean_real_probability"]
    shown = "-" if mean is None else f"{mean:.2f}"
    return f"passive {passive['real']:>2}r/{passive['spoof']:<2}s p={shown}"


def _print_text(summary: dict[str, Any]) -> None:
    for row in summary["samples"]:
        cues = row.get("cues") or {}
        print(
            f"{row['truth']:<6} {row['decision']:<6} {row['reason']:<16} "
            f"blink {row['score']:.2f}  {_passive_text(cues.get('passive')):<24} "
            f"eyes {row['frames_with_eyes']:>3}/{row['frames']:<3} "
            f"{row['species'] or '':<20} {row['path']}"
        )
    live, attack = summary["live"], summary["attack"]
    print(f"\nBPCER {_pct(summary['bpcer'])} ({live['refused']} of {live['samples']} live refused)")
    print(
        f"APCER {_pct(summary['apcer'])} (worst species; {attack['accepted']} of "
        f"{attack['samples']} attacks accepted)"
    )
    for species, entry in sorted(summary["apcer_by_species"].items()):
        print(
            f"  {species:<24} APCER {_pct(entry['apcer'])} ({entry['accepted']}/{entry['samples']})"
        )
    by_cue = summary["refused_by_cue"]
    print(f"refused by each cue alone: live {by_cue['live']}, attack {by_cue['attack']}")
    stills = summary["bona_fide_stills"]
    print(
        f"bona fide stills (passive cue only): {stills['passive_refused']} of "
        f"{stills['samples']} called spoof"
    )
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"{summary['seconds']} s")


def run(args: argparse.Namespace) -> int:
    from device.evaluation.liveness import (
        STILL_FPS,
        evaluate,
        samples_in,
        samples_under,
    )
    from device.vision.pipeline import FacePipeline

    if args.frames < 5 or args.frames > 10_000:
        raise BlinkpayError("--frames must be between 5 and 10000")
    if args.live or args.attack:
        if args.data is not None:
            raise BlinkpayError("give either --data or --live/--attack, not both")
        samples = [s for d in args.live for s in samples_in(d, True)]
        samples += [s for d in args.attack for s in samples_in(d, False)]
    else:
        samples = samples_under(args.data or SHARED_DATA_DIR / "liveness")
    if args.limit > 0:
        samples = [s for s in samples if s.live][: args.limit] + [s for s in samples if not s.live][
            : args.limit
        ]
    if not samples:
        raise BlinkpayError("no samples found (videos, frame folders or still images)")
    config = config_from_args(args)
    pipeline = FacePipeline.from_config(config.vision, with_embedder=False)
    summary = evaluate(
        samples,
        pipeline,
        config.liveness,
        args.frames,
        passive_required=config.session.passive_required,
    )
    summary["settings"] = {
        "still_frames": args.frames,
        "still_fps": STILL_FPS,
        "liveness": asdict(config.liveness),
        "passive": {
            "enabled": config.vision.passive_enabled,
            "threshold": config.vision.passive_threshold,
            "min_detection_score": config.vision.passive_min_detection_score,
            "max_hz": config.vision.passive_max_hz,
            "required": config.session.passive_required,
        },
    }
    if args.json:
        print_json(summary)
    else:
        _print_text(summary)
    return 0
