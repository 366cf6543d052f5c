"""Luminance of a face and of the background around it, per frame: what the illumination
challenge (device.core.challenge) reads.

The face region is the middle of the detector's box (cheeks, nose, forehead: skin that
faces the light; hair and the box's background corners left out). The background is the
frame outside the box grown 1.5x (mostly what stands further away). Both are medians of
the luma over a strided grid: a median ignores a small specular glint (the light's
reflection in glasses or in a screen's glass), which follows the light whatever it
shines on, and a grid keeps the cost at a few thousand pixels a frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FACE_CORE = 0.6  # the central fraction of the box, each way
BACKGROUND_MARGIN = 1.5  # the background starts outside the box grown by this
MAX_SAMPLES = 4096  # pixels per region, about


@dataclass(frozen=True)
class FaceLight:
    face: float  # median luma 0..255 of the face region
    background: float  # median luma 0..255 around it; nan when nothing is left outside


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _scaled_box(
    box: tuple[float, float, float, float], scale: float, width: int, height: int
) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * scale / 2, (y1 - y0) * scale / 2
    return (
        max(0, int(cx - hw)),
        max(0, int(cy - hh)),
        min(width, int(np.ceil(cx + hw))),
        min(height, int(np.ceil(cy + hh))),
    )


def _stride(pixels: int) -> int:
    return max(1, int(np.sqrt(pixels / MAX_SAMPLES)))


def measure_light(rgb: np.ndarray, box: tuple[float, float, float, float]) -> FaceLight | None:
    """The face's and the background's median luma in an RGB frame; None for an empty box."""
    height, width = rgb.shape[:2]
    left, top, right, bottom = _scaled_box(box, FACE_CORE, width, height)
    if right <= left or bottom <= top:
        return None
    step = _stride((right - left) * (bottom - top))
    face = float(np.median(_luma(rgb[top:bottom:step, left:right:step].astype(np.float32))))
    step = _stride(width * height)
    grid = _luma(rgb[::step, ::step].astype(np.float32))
    left, top, right, bottom = _scaled_box(box, BACKGROUND_MARGIN, width, height)
    outside = np.ones(grid.shape, bool)
    outside[-(-top // step) : -(-bottom // step), -(-left // step) : -(-right // step)] = False
    background = float(np.median(grid[outside])) if outside.any() else float("nan")
    return FaceLight(face, background)
