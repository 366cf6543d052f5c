"""LFW pairs-file parsing shared by the benchmark scripts (reads ../shared/data only)."""

from __future__ import annotations

from pathlib import Path

from device.evaluation.pairs import Pair, read_pairs

LFW_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "lfw-view1"

__all__ = ["LFW_DIR", "Pair", "pair_images", "read_pairs"]


def pair_images(pairs: list[Pair]) -> list[str]:
    """Unique image paths (relative to the images folder) in first-seen order."""
    seen: dict[str, None] = {}
    for pair in pairs:
        seen.setdefault(pair.a, None)
        seen.setdefault(pair.b, None)
    return list(seen)
