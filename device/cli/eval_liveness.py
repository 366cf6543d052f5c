"""`blinkpay eval liveness`: blink liveness on clips and replayed stills as ISO/IEC 30107-3
figures (APCER per attack species, BPCER); samples and scoring: device/evaluation/liveness.py.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import Any

from device.cli._common import add_config_argument, config_from_args, print_json
from device.errors import BlinkpayError
from device.paths import SHARED_DATA_DIR

HELP = "liveness APCER/BPCER on clips"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="one folder: clips are live, stills are attacks "
        f"(default {SHARED_DATA_DIR / 'liveness'})",
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


def _print_text(summary: dict[str, Any]) -> None:
    for row in summary["samples"]:
        print(
            f"{row['truth']:<6} {row['decision']:<6} {row['reason']:<16} "
            f"score {row['score']:.2f}  eyes {row['frames_with_eyes']:>3}/{row['frames']:<3} "
            f"{row['species'] or '':<22} {row['path']}"
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
    summary = evaluate(samples, pipeline, config.liveness, args.frames)
    summary["settings"] = {
        "still_frames": args.frames,
        "still_fps": STILL_FPS,
        "liveness": asdict(config.liveness),
    }
    if args.json:
        print_json(summary)
    else:
        _print_text(summary)
    return 0
