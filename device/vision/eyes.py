"""Eye openness from MediaPipe's iris landmark model (eyelid contour per eye).

The face mesh sees the whole face at 192 px and its eyelid points barely move in a real
blink; the iris model sees each eye at 64x64 and follows the lids. Each eye's ROI follows
MediaPipe's iris_landmark_left_and_right graph: centred between the eye corners (from the
mesh), rotated so they lie level, square side 2.3x their distance. The model is trained
on the eye on the image's left, so the other eye's crop is mirrored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from device.vision.landmarks import LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS, Roi
from device.vision.models import Manifest, load_model
from device.vision.runtime import dequantise, quantise

EYE_ROI_SCALE = 2.3
NUM_EYE_POINTS = 71  # eye contour, halos and brow
NUM_IRIS_POINTS = 5
# The first 16 eye points are the lid contour (MediaPipe update_face_landmarks): 0 outer
# corner, 1-7 lower lid, 8 inner corner, 9-15 upper lid, both lids outer -> inner.
OUTER_CORNER, INNER_CORNER = 0, 8
LID_PAIRS = ((11, 3), (12, 4), (13, 5))  # (upper, lower) across the eye's middle


@dataclass(frozen=True)
class EyeOpenness:
    """Eye aspect ratio per eye: mean eyelid gap / eye width (corner to corner), from the
    iris model's lid contour. Measured: open eyes mostly 0.25-0.40 (LFW median 0.32), a
    real blink about halves it (0.36 -> 0.18 in the 25 fps blink clip), half-closed
    "sleepy" eyes 0.08-0.16; compare to the same person's open level for blinks.
    right/left are the subject's (for an unmirrored camera the subject's right eye is on
    the image's left)."""

    right: float
    left: float

    @property
    def mean(self) -> float:
        return (self.right + self.left) / 2


def eye_roi(points: np.ndarray, corners: tuple[int, int]) -> Roi:
    """The ROI around one eye from two mesh corner points, taken left to right in the image."""
    a, b = points[corners[0], :2], points[corners[1], :2]
    (x0, y0), (x1, y1) = (a, b) if a[0] <= b[0] else (b, a)
    rotation = -math.atan2(-(y1 - y0), x1 - x0)
    side = float(math.hypot(x1 - x0, y1 - y0)) * EYE_ROI_SCALE
    return Roi(float((x0 + x1) / 2), float((y0 + y1) / 2), max(side, 1.0), rotation)


def aspect_ratio(contour: np.ndarray) -> float:
    """Mean lid gap over corner distance for one eye's (>=16, 2+) contour points."""
    width = float(np.linalg.norm(contour[OUTER_CORNER, :2] - contour[INNER_CORNER, :2]))
    if width <= 1e-6:
        return 0.0
    gaps = [float(np.linalg.norm(contour[u, :2] - contour[lo, :2])) for u, lo in LID_PAIRS]
    return sum(gaps) / (len(gaps) * width)


class IrisModel:
    def __init__(self, manifest: Manifest, threads: int) -> None:
        self.entry, self.model = load_model(manifest, "iris", threads)
        self.size = self.entry.input_shape[1]
        self._range = self.entry.input_range()
        self._contour = self.model.output_by_size(NUM_EYE_POINTS * 3)

    def contour(self, rgb: np.ndarray, roi: Roi, mirrored: bool) -> np.ndarray:
        """(71, 3) eye points in the ROI's input pixels (unmirrored)."""
        crop = cv2.warpAffine(
            rgb,
            roi.to_input(self.size),
            (self.size, self.size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        if mirrored:
            crop = np.ascontiguousarray(crop[:, ::-1])
        low, high = self._range or (0.0, 255.0)
        values = crop.astype(np.float32) * ((high - low) / 255.0) + low
        outputs = self.model.run(quantise(values[None], self.model.inputs[0]))
        points = dequantise(outputs[self._contour.index], self._contour)
        points = points.reshape(NUM_EYE_POINTS, 3).copy()
        if mirrored:
            points[:, 0] = self.size - points[:, 0]
        return points

    def openness(self, rgb: np.ndarray, mesh_points: np.ndarray) -> EyeOpenness:
        """Both eyes' aspect ratios for a face whose mesh is mesh_points (frame pixels)."""
        right = self.contour(rgb, eye_roi(mesh_points, RIGHT_EYE_CORNERS), mirrored=False)
        left = self.contour(rgb, eye_roi(mesh_points, LEFT_EYE_CORNERS), mirrored=True)
        return EyeOpenness(right=aspect_ratio(right), left=aspect_ratio(left))
