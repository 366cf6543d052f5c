"""The shipped passive cue (MiniFASNet pair) over ../shared/data/liveness/pad.

Every image and every --every-th frame of every video listed in pad/SOURCES.tsv goes
through the terminal's own FacePipeline (BlazeFace, the passive cue with the configured
rule: by default the publisher's argmax), untracked, the largest face only. Prints the
summary per kind (APCER for each attack kind, BPCER for live) and, with --per-file, the
per-file table in Markdown (the one in docs/liveness.md). No threshold is fitted here.

Run from the project root:
    PYTHONPATH=. python benchmarks/passive_pad.py [--per-file] [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device.paths import SHARED_DATA_DIR  # noqa: E402
from device.vision.config import VisionConfig  # noqa: E402
from device.vision.images import to_rgb  # noqa: E402
from device.vision.pipeline import FacePipeline  # noqa: E402

PAD_DIR = SHARED_DATA_DIR / "liveness" / "pad"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
VIDEO_SUFFIXES = {".mp4"}
ATTACK_KINDS = ("attack_print", "attack_replay", "replay_video")


@dataclass
class Presentation:
    """One image or one sampled video frame and what the cue said about it."""

    file: str  # relative to pad/
    frame: int | None
    kind: str
    tight_crop: bool  # the authors' face crop: little or no context around the face
    outcome: str  # real, spoof, no_verdict, no_face, unreadable
    detection_score: float | None = None
    real_probability: float | None = None
    v2_real: float | None = None
    v1se_real: float | None = None


def upright_rgb(path: Path) -> np.ndarray | None:
    """RGB with the EXIF orientation applied (as a camera would deliver the scene)."""
    data = path.read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    return None if image is None else to_rgb(image)


def frames(path: Path, every: int) -> list[tuple[int, np.ndarray]]:
    capture = cv2.VideoCapture(str(path))
    found, index = [], 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if index % every == 0:
            found.append((index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        index += 1
    capture.release()
    return found


def score(pipeline: FacePipeline, rgb: np.ndarray, base: Presentation) -> Presentation:
    faces = pipeline.process(rgb, 0.0, embed=False, track=False, eyes=False)
    if not faces:
        base.outcome = "no_face"
        return base
    face = faces[0]  # largest first
    base.detection_score = round(face.score, 3)
    passive = face.passive
    assert passive is not None
    base.outcome = passive.verdict
    if passive.real_probability is not None:
        base.real_probability = round(passive.real_probability, 4)
        base.v2_real, base.v1se_real = (round(m.real, 4) for m in passive.models)
    return base


def evaluate(pipeline: FacePipeline, every: int) -> list[Presentation]:
    results = []
    with (PAD_DIR / "SOURCES.tsv").open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    for row in rows:
        relative = f"{row['repo'].replace('/', '__')}/{row['path']}"
        path = PAD_DIR / relative
        tight = "crop" in row["notes"].lower()
        base = Presentation(relative, None, row["kind"], tight, "unreadable")
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            rgb = upright_rgb(path) if path.exists() else None
            results.append(base if rgb is None else score(pipeline, rgb, base))
        elif suffix in VIDEO_SUFFIXES:
            for index, rgb in frames(path, every):
                frame = Presentation(relative, index, row["kind"], tight, "unreadable")
                results.append(score(pipeline, rgb, frame))
    return results


def wilson(errors: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion: honest error bars for small counts."""
    p = errors / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(results: list[Presentation], kinds: list[str]) -> list[dict[str, object]]:
    """Per kind: counts by outcome, and the error rate among presentations with a verdict
    (APCER: attacks called real; BPCER: live called spoof)."""
    rows = []
    for kind in kinds:
        group = [r for r in results if r.kind == kind and r.outcome != "unreadable"]
        counts = {o: sum(r.outcome == o for r in group) for o in ("real", "spoof")}
        counts["no_verdict"] = sum(r.outcome in ("no_verdict", "no_face") for r in group)
        decided = counts["real"] + counts["spoof"]
        is_attack = kind in ATTACK_KINDS
        errors = counts["real"] if is_attack else counts["spoof"]
        rows.append(
            {
                "kind": kind,
                "metric": "APCER" if is_attack else "BPCER",
                "presentations": len(group),
                **counts,
                "error_rate": round(errors / decided, 3) if decided else None,
                "errors": errors,
                "decided": decided,
            }
        )
    return rows


def markdown_summary(title: str, rows: list[dict[str, object]]) -> str:
    lines = [
        f"{title}\n",
        "| kind | presentations | called real | called spoof | no face / no verdict | rate |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        rate = row["error_rate"]
        if rate is None:
            text = "n/a"
        else:
            low, high = wilson(int(row["errors"]), int(row["decided"]))
            text = (
                f"{row['metric']} {rate:.1%} ({row['errors']}/{row['decided']}; "
                f"95 % CI {low:.0%}-{high:.0%})"
            )
        lines.append(
            f"| {row['kind']} | {row['presentations']} | {row['real']} | {row['spoof']} "
            f"| {row['no_verdict']} | {text} |"
        )
    return "\n".join(lines)


def markdown_per_file(results: list[Presentation]) -> str:
    """One row per image; one per video (its sampled frames' outcomes, median scores)."""
    lines = [
        "| file | kind | crop | det. score | outcome | real p (mean) | V2 real | V1SE real |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(value: object) -> str:
        return "" if value is None else str(value)

    def median(values: list[float | None]) -> str:
        found = [v for v in values if v is not None]
        return f"median {float(np.median(found)):.4f}" if found else ""

    seen_videos: set[str] = set()
    for r in results:
        crop = "yes" if r.tight_crop else ""
        if r.frame is None:
            lines.append(
                f"| {r.file} | {r.kind} | {crop} | {cell(r.detection_score)} | {r.outcome} "
                f"| {cell(r.real_probability)} | {cell(r.v2_real)} | {cell(r.v1se_real)} |"
            )
        elif r.file not in seen_videos:
            seen_videos.add(r.file)
            group = [g for g in results if g.file == r.file]
            outcomes = ", ".join(
                f"{sum(g.outcome == o for g in group)} {o}"
                for o in ("real", "spoof", "no_verdict", "no_face")
                if any(g.outcome == o for g in group)
            )
            lines.append(
                f"| {r.file} ({len(group)} frames) | {r.kind} | {crop} "
                f"| {median([g.detection_score for g in group])} | {outcomes} "
                f"| {median([g.real_probability for g in group])} "
                f"| {median([g.v2_real for g in group])} | {median([g.v1se_real for g in group])} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--every", type=int, default=10, help="video frame step (default 10)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--per-file", action="store_true", help="print the per-file table")
    parser.add_argument("--json", type=Path, help="write every presentation's scores here")
    args = parser.parse_args()
    if not PAD_DIR.is_dir():
        raise SystemExit(f"no PAD data at {PAD_DIR}")
    config = VisionConfig(threads=args.threads)
    pipeline = FacePipeline.from_config(config, with_embedder=False)
    results = evaluate(pipeline, args.every)
    kinds = ["attack_print", "attack_replay", "replay_video", "live"]
    images = [r for r in results if r.frame is None]
    print(
        f"rule: {config.passive_threshold or 'argmax (publisher)'}, "
        f"min detection score {config.passive_min_detection_score}\n"
    )
    print(markdown_summary("Images and video frames together:", summarise(results, kinds)))
    print()
    print(
        markdown_summary(
            "Whole scenes only (the authors' tight crops left out):",
            summarise([r for r in results if not r.tight_crop], kinds),
        )
    )
    print()
    print(
        markdown_summary(
            "The authors' tight face crops only:",
            summarise([r for r in results if r.tight_crop], kinds),
        )
    )
    print()
    videos = sorted({r.file for r in results if r.frame is not None})
    for video in videos:
        group = [r for r in results if r.file == video]
        real = sum(r.outcome == "real" for r in group)
        print(f"{video}: {group[0].kind}, {real}/{len(group)} sampled frames called real")
    print(f"\n{len(images)} images, {len(results) - len(images)} video frames")
    if args.per_file:
        print()
        print(markdown_per_file(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    main()
