"""Samples for `blinkpay eval liveness`: which files are presentations, of what species,
and their frames.

- a video file (mp4, mov, avi, mkv, m4v) or a folder of frames (images in name order,
  optional fps.txt, else 15 fps): played at its own frame rate;
- a still image (jpg, png, gif, bmp, ...): replayed as `--frames` frames at 15 fps with
  small hand-held jitter (shift, tilt, scale, brightness, sensor noise), seeded by the
  file name so every run sees the same frames. A still is a photo presented to the camera.

Labels: a folder's SOURCES.tsv (the shared data's pad/ set: columns repo, path, kind)
names each file's kind (`attack_print`, `attack_replay`, `replay_video`, `live`, and
`attack_mask` when present); elsewhere clips are bona fide and stills are attacks.
Attack species follow ISO/IEC 30107-3: print, screen_still, video_replay, mask.
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.errors import BlinkpayError

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".m4v"}
STILL_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
STILL_FPS = 15.0
SOURCES_FILE = "SOURCES.tsv"

# Labels the shared data's README gives its attack photos (Silent-Face-Anti-Spoofing).
KNOWN_SPECIES = {
    "image_F1": "print",
    "image_F2": "screen_still",
    "image_T1": "still_of_live_person",
}
# SOURCES.tsv kinds -> attack species ("" = bona fide)
SPECIES_BY_KIND = {
    "attack_print": "print",
    "attack_replay": "screen_still",
    "replay_video": "video_replay",
    "attack_mask": "mask",
    "live": "",
}


@dataclass(frozen=True)
class Sample:
    path: Path
    kind: str  # "video", "frames" or "still"
    live: bool
    species: str  # attack species ("" for bona fide)

    @property
    def passive_only(self) -> bool:
        """A bona fide still: a live person's single picture. Replayed it cannot blink, so
        it says nothing about the fused decision; it does measure the passive cue."""
        return self.live and self.kind == "still"


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


def labelled_kinds(root: Path) -> dict[Path, str]:
    """Every file a SOURCES.tsv under root labels, with its kind. The table's `repo`
    owner/name is the folder owner__name beside it, its `path` relative to that."""
    labels: dict[Path, str] = {}
    for table in sorted(root.rglob(SOURCES_FILE)):
        with table.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                kind = row.get("kind", "")
                if kind not in SPECIES_BY_KIND:
                    raise BlinkpayError(f"{table}: unknown kind {kind!r} for {row.get('path')}")
                folder = table.parent / row["repo"].replace("/", "__")
                labels[(folder / row["path"]).resolve()] = kind
    return labels


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


def _unlabelled(path: Path, root: Path) -> Sample | None:
    kind = _kind(path)
    if kind == "video":
        return Sample(path, kind, True, "")
    if kind == "still":
        return Sample(path, kind, False, _species(path, kind, root))
    return None


def samples_under(root: Path) -> list[Sample]:
    """--data: files a SOURCES.tsv labels by their kind; elsewhere clips (videos, folders
    with an fps.txt) are live and still images are attacks."""
    if not root.is_dir():
        raise BlinkpayError(f"not a folder: {root} (liveness data: see --data)")
    labels = labelled_kinds(root)
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
        label = labels.get(path.resolve())
        kind = _kind(path)
        if label is not None and kind is not None:
            species = SPECIES_BY_KIND[label]
            found.append(Sample(path, kind, not species, species))
        elif label is None and (sample := _unlabelled(path, root)) is not None:
            found.append(sample)
    return found


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
