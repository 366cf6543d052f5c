"""Blink liveness evaluation (`blinkpay eval liveness`) on clips and replayed stills, as
ISO/IEC 30107-3 figures (APCER per attack species, BPCER).

Samples:
- a video file (mp4, mov, avi, mkv, m4v) or a folder of frames (images in name order,
  optional fps.txt, else 15 fps): played at its own frame rate;
- a still image (jpg, png, gif, bmp, ...): replayed as `--frames` frames at 15 fps with
  small hand-held jitter (shift, tilt, scale, brightness, sensor noise), seeded by the
  file name so every run sees the same frames. A still is a photo presented to the camera.

`--live DIR --attack DIR`: every entry directly under DIR is one sample. `--data DIR`
(default ../shared/data/liveness): one folder searched throughout; clips (videos and
folders with an fps.txt) are bona fide presentations, still images are attacks.
Every frame goes through the terminal's own vision pipeline (eye openness of the largest
face's track) and the terminal's own scorer (device.core.liveness).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from device.core.config import LivenessConfig
from device.core.liveness import BlinkTracker
from device.errors import BlinkpayError
from device.vision.pipeline import FacePipeline

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".m4v"}
STILL_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
STILL_FPS = 15.0

# Labels the shared data's README gives its attack photos (Silent-Face-Anti-Spoofing).
KNOWN_SPECIES = {
    "image_F1": "printed_photo",
    "image_F2": "screen_photo",
    "image_T1": "still_of_live_person",
}
NOTES = [
    "Stills are replayed as frame sequences with hand-held jitter: a presentation that "
    "cannot blink.",
    "image_T1.jpg (a live person, but one still frame) is counted as an attack of species "
    "still_of_live_person: replayed, it is physically a photo presentation, and a blink "
    "check cannot and must not accept it. It says nothing about BPCER, which only real "
    "clips measure.",
    "APCER is given per attack species (ISO/IEC 30107-3); 'apcer' is the worst species.",
]


@dataclass(frozen=True)
class Sample:
    path: Path
    kind: str  # "video", "frames" or "still"
    live: bool
    species: str  # attack species ("" for bona fide)


# ------------------------------------------------------------------ finding samples


def _kind(path: Path) -> str | None:
    if path.is_dir():
        return "frames"
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return "video"
    if suffix in STILL_SUFFIXES:
        return "still"
    return None


def _species(path: Path, kind: str, root: Path) -> str:
    if path.stem in KNOWN_SPECIES:
        return KNOWN_SPECIES[path.stem]
    if kind != "still":
        return f"{kind}_replay"
    top = path.relative_to(root).parts[0] if path.parent != root else "still"
    return "still_face" if top == "yalefaces" else f"still:{top}"


def samples_in(folder: Path, live: bool) -> list[Sample]:
    """--live/--attack: each entry directly under the folder is one sample."""
    if not folder.is_dir():
        raise BlinkpayError(f"not a folder: {folder}")
    found = []
    for path in sorted(folder.iterdir()):
        kind = _kind(path)
        if kind is None or path.name.startswith("."):
            continue
        found.append(Sample(path, kind, live, "" if live else _species(path, kind, folder)))
    return found


def samples_under(root: Path) -> list[Sample]:
    """--data: clips anywhere under root are live, still images are attacks."""
    if not root.is_dir():
        raise BlinkpayError(f"not a folder: {root} (liveness data: see --data)")
    found = []
    for path in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_dir():
            if (path / "fps.txt").is_file():
                found.append(Sample(path, "frames", True, ""))
            continue
        if any((parent / "fps.txt").is_file() for parent in path.parents if root in parent.parents):
            continue  # a frame of a clip folder
        kind = _kind(path)
        if kind == "video":
            found.append(Sample(path, kind, True, ""))
        elif kind == "still":
            found.append(Sample(path, kind, False, _species(path, kind, root)))
    return found


# ------------------------------------------------------------------ frames of a sample


def _clip_frames(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    from device.clock import FakeClock
    from device.hw.camera.file_source import FileSource

    source = FileSource(path, FakeClock(start=0.0), paced=False)
    try:
        for frame in source:
            yield frame.timestamp, frame.rgb
    finally:
        source.close()


def still_frames(rgb: np.ndarray, count: int, seed: int) -> Iterator[tuple[float, np.ndarray]]:
    """The still as a hand-held photo: every frame slightly shifted, tilted, scaled and
    re-lit, with sensor noise. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    h, w = rgb.shape[:2]
    for i in range(count):
        angle, scale = rng.uniform(-1.0, 1.0), 1.0 + rng.uniform(-0.01, 0.01)
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        matrix[:, 2] += rng.uniform(-2.0, 2.0, size=2)
        moved = cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
        lit = moved.astype(np.float32) * rng.uniform(0.97, 1.03)
        lit += rng.normal(0.0, 2.0, size=lit.shape)
        yield i / STILL_FPS, np.clip(lit, 0, 255).astype(np.uint8)


def sample_frames(sample: Sample, still_count: int) -> Iterator[tuple[float, np.ndarray]]:
    if sample.kind != "still":
        yield from _clip_frames(sample.path)
        return
    from device.vision.images import read_image

    seed = zlib.crc32(sample.path.name.encode("utf-8"))
    yield from still_frames(read_image(sample.path), still_count, seed)


# ------------------------------------------------------------------ scoring


def score_sample(
    sample: Sample, pipeline: FacePipeline, cfg: LivenessConfig, still_count: int
) -> dict[str, Any]:
    """One sample through the pipeline (the largest face's track) and the blink scorer."""
    pipeline.reset_tracking()
    tracker = BlinkTracker(cfg)
    track: int | None = None
    frames = 0
    for timestamp, rgb in sample_frames(sample, still_count):
        frames += 1
        faces = pipeline.process(rgb, timestamp, embed=False)
        if track is None and faces:
            track = faces[0].track_id  # the largest face is the one presenting
        face = next((f for f in faces if f.track_id == track), None)
        if face is None:
            tracker.update(timestamp, None, None)
        else:
            tracker.observe(timestamp, face)
    result = tracker.result()
    return {
        "path": str(sample.path),
        "kind": sample.kind,
        "truth": "live" if sample.live else "attack",
        "species": sample.species or None,
        "decision": "accept" if result.live else "refuse",
        "reason": result.reason.value,
        "score": result.score,
        "blinks": [
            {"start_s": round(b.start, 3), "ms": round(b.duration_ms), "depth": b.depth}
            for b in result.blinks
        ],
        "frames": frames,
        "frames_with_eyes": result.frames,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    live = [r for r in rows if r["truth"] == "live"]
    attacks = [r for r in rows if r["truth"] == "attack"]
    refused_live = sum(r["decision"] == "refuse" for r in live)
    accepted_attacks = sum(r["decision"] == "accept" for r in attacks)
    by_species: dict[str, dict[str, Any]] = {}
    for row in attacks:
        entry = by_species.setdefault(row["species"], {"samples": 0, "accepted": 0})
        entry["samples"] += 1
        entry["accepted"] += row["decision"] == "accept"
    for entry in by_species.values():
        entry["apcer"] = entry["accepted"] / entry["samples"]
    return {
        "live": {"samples": len(live), "refused": refused_live},
        "attack": {"samples": len(attacks), "accepted": accepted_attacks},
        "bpcer": refused_live / len(live) if live else None,
        "apcer": max((e["apcer"] for e in by_species.values()), default=None),
        "apcer_by_species": by_species,
        "samples": rows,
        "notes": NOTES,
    }


def evaluate(
    samples: Sequence[Sample], pipeline: FacePipeline, cfg: LivenessConfig, still_count: int
) -> dict[str, Any]:
    """Score every sample (an unreadable one is reported as refused, not fatal) and sum up."""
    start = time.monotonic()
    rows = []
    for sample in samples:
        try:
            rows.append(score_sample(sample, pipeline, cfg, still_count))
        except BlinkpayError as exc:  # an unreadable sample is reported, not fatal
            rows.append(
                {
                    "path": str(sample.path),
                    "truth": "live" if sample.live else "attack",
                    "species": sample.species or None,
                    "decision": "refuse",
                    "reason": f"unreadable: {exc}",
                    "score": 0.0,
                    "blinks": [],
                    "frames": 0,
                    "frames_with_eyes": 0,
                    "kind": sample.kind,
                }
            )
    summary = summarise(rows)
    summary["seconds"] = round(time.monotonic() - start, 2)
    return summary
