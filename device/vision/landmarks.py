"""MediaPipe face mesh: ROI from a detection, 468 landmarks and head pose.

The ROI follows MediaPipe's face_detection_front_detection_to_roi graph: the detection
box centre, rotated so the eye keypoints lie level, square on the long side, scaled
1.5x. The mesh returns (x, y, z) in input pixels; they are mapped back to the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from device.vision.detector import Detection
from device.vision.models import Manifest, load_model
from device.vision.runtime import dequantise, quantise

NUM_LANDMARKS = 468
ROI_SCALE = 1.5

# Mesh indices. "right"/"left" are the subject's: for an unmirrored camera the
# subject's right eye is on the image's left.
RIGHT_EYE_CORNERS = (33, 133)  # outer, inner
LEFT_EYE_CORNERS = (263, 362)
CHEEK_RIGHT, CHEEK_LEFT = 234, 454  # face outline at eye height
FOREHEAD, CHIN, NOSE_TIP = 10, 152, 1


@dataclass(frozen=True)
class Roi:
    """A rotated square in frame pixels: centre, side length, rotation in radians."""

    cx: float
    cy: float
    size: float
    rotation: float

    def to_input(self, input_size: int) -> np.ndarray:
        """2x3 affine matrix: frame pixels -> model input pixels."""
        scale = input_size / self.size
        cos, sin = math.cos(self.rotation), math.sin(self.rotation)
        # rotate by -rotation about the centre, scale, then move the centre to the middle
        m = np.array([[cos, sin], [-sin, cos]], np.float64) * scale
        t = np.array([input_size / 2, input_size / 2]) - m @ np.array([self.cx, self.cy])
        return np.hstack([m, t[:, None]])


def _normalise_angle(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def roi_from_detection(det: Detection) -> Roi:
    """MediaPipe DetectionsToRects (rotation from keypoints 0->1, target 0) then
    RectTransformation (scale 1.5, square_long)."""
    (x0, y0), (x1, y1) = det.keypoints[0], det.keypoints[1]
    rotation = _normalise_angle(-math.atan2(-(y1 - y0), x1 - x0))
    cx = (det.box[0] + det.box[2]) / 2
    cy = (det.box[1] + det.box[3]) / 2
    return Roi(cx, cy, max(det.width, det.height) * ROI_SCALE, rotation)


def roi_from_landmarks(points: np.ndarray) -> Roi:
    """MediaPipe's landmarks-to-ROI for tracking: eye-corner rotation, landmark bounds
    (in the rotated frame), 1.5x."""
    (x0, y0), (x1, y1) = points[RIGHT_EYE_CORNERS[0], :2], points[LEFT_EYE_CORNERS[0], :2]
    rotation = _normalise_angle(-math.atan2(-(y1 - y0), x1 - x0))
    cos, sin = math.cos(rotation), math.sin(rotation)
    xy = points[:, :2].astype(np.float64)
    # bounds of the points in the frame rotated by -rotation, centre mapped back
    rx = xy[:, 0] * cos + xy[:, 1] * sin
    ry = -xy[:, 0] * sin + xy[:, 1] * cos
    mx, my = (rx.min() + rx.max()) / 2, (ry.min() + ry.max()) / 2
    cx, cy = mx * cos - my * sin, mx * sin + my * cos
    side = max(rx.max() - rx.min(), ry.max() - ry.min()) * ROI_SCALE
    return Roi(float(cx), float(cy), float(side), rotation)


def head_pose(points: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees from the mesh's 3-D points; 0, 0 faces the camera.
    Yaw: depth difference across the cheeks; pitch: depth difference chin vs forehead,
    both in the roll-corrected face frame. Positive yaw = turned to the image's right."""
    right, left = points[CHEEK_RIGHT], points[CHEEK_LEFT]
    across = left[:2] - right[:2]
    width = float(np.linalg.norm(across))
    top, bottom = points[FOREHEAD], points[CHIN]
    height = float(np.linalg.norm(bottom[:2] - top[:2]))
    if width <= 1e-6 or height <= 1e-6:
        return 0.0, 0.0
    yaw = math.degrees(math.atan2(float(left[2] - right[2]), width))
    pitch = math.degrees(math.atan2(float(bottom[2] - top[2]), height)) - PITCH_OFFSET_DEG
    return yaw, pitch


# The mesh's chin sits in front of its forehead on a level face; measured on LFW
# DevTrain (median over frontal faces), subtracted so a level face reads 0.
PITCH_OFFSET_DEG = 7.0


@dataclass(frozen=True)
class MeshResult:
    points: np.ndarray  # (468, 3) frame pixels; z in the same scale as x
    presence: float  # sigmoid of the mesh's face flag


class FaceMesh:
    def __init__(self, manifest: Manifest, threads: int) -> None:
        self.entry, self.model = load_model(manifest, "face_mesh", threads)
        self.size = self.entry.input_shape[1]
        self._range = self.entry.input_range()
        names = {o.name: o for o in self.model.outputs}
        self._points = names.get(self.entry.output_tensor_name("landmarks") or "")
        self._points = self._points or self.model.output_by_size(NUM_LANDMARKS * 3)
        self._flag = names.get(self.entry.output_tensor_name("face_flag") or "")
        self._flag = self._flag or self.model.output_by_size(1)

    def run(self, rgb: np.ndarray, roi: Roi) -> MeshResult:
        matrix = roi.to_input(self.size)
        crop = cv2.warpAffine(
            rgb,
            matrix,
            (self.size, self.size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        low, high = self._range or (0.0, 255.0)
        values = crop.astype(np.float32) * ((high - low) / 255.0) + low
        outputs = self.model.run(quantise(values[None], self.model.inputs[0]))
        raw = dequantise(outputs[self._points.index], self._points).reshape(NUM_LANDMARKS, 3)
        flag = float(dequantise(outputs[self._flag.index], self._flag).ravel()[0])
        inverse = cv2.invertAffineTransform(matrix)
        xy = raw[:, :2].astype(np.float64) @ inverse[:, :2].T + inverse[:, 2]
        z = raw[:, 2:3] * (roi.size / self.size)
        points = np.hstack([xy, z]).astype(np.float32)
        presence = 1.0 / (1.0 + math.exp(-max(-100.0, min(100.0, flag))))
        return MeshResult(points, presence)
