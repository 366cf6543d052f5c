"""Eye openness: ROI geometry, aspect ratio, and real open vs closed eyes."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.vision.eyes import EYE_ROI_SCALE, aspect_ratio, eye_roi


def _eye_contour(width: float, gap: float) -> np.ndarray:
    """Lid contour in the model's order: 0 outer corner, 1-7 lower lid, 8 inner corner,
    9-15 upper lid, on an ellipse of the given width and lid gap."""
    points = np.zeros((71, 3))
    xs = np.linspace(0, width, 9)
    half = gap / 2
    points[:9, 0] = xs
    points[:9, 1] = half * np.sqrt(np.clip(1 - ((xs - width / 2) / (width / 2)) ** 2, 0, None))
    points[9:16, 0] = xs[1:8]
    points[9:16, 1] = -points[1:8, 1]
    return points


def test_aspect_ratio_of_open_and_closed_eyes() -> None:
    open_eye = aspect_ratio(_eye_contour(30.0, 10.0))
    closed = aspect_ratio(_eye_contour(30.0, 1.0))
    # lid pairs 3/11, 4/12, 5/13 sit at x = 11.25, 15, 18.75 of 30
    expected = np.mean([math.sqrt(1 - ((x - 15) / 15) ** 2) for x in (11.25, 15, 18.75)]) / 3
    assert open_eye == pytest.approx(expected)
    assert closed == pytest.approx(expected / 10)
    assert aspect_ratio(np.zeros((71, 3))) == 0.0


def test_eye_roi_is_centred_level_and_sized_by_the_corners() -> None:
    points = np.zeros((468, 3))
    points[33, :2] = (110.0, 50.0)  # given right to left: the ROI still reads left to right
    points[133, :2] = (90.0, 40.0)
    roi = eye_roi(points, (33, 133))
    assert (roi.cx, roi.cy) == pytest.approx((100.0, 45.0))
    assert roi.size == pytest.approx(math.hypot(20, 10) * EYE_ROI_SCALE)
    matrix = roi.to_input(64)
    corners = points[[133, 33], :2] @ matrix[:, :2].T + matrix[:, 2]
    assert corners[0, 1] == pytest.approx(corners[1, 1])  # level in the crop
    assert corners[0, 0] < 32 < corners[1, 0]


@pytest.mark.data
def test_blink_clip_eyes_close_during_the_blink(pipeline, shared_data: Path) -> None:
    clip = shared_data / "liveness/blink-clips/example.mp4"
    if not clip.exists():
        pytest.skip(f"{clip} not present")
    capture = cv2.VideoCapture(str(clip))
    openness: dict[int, float] = {}
    for index in range(20):
        ok, bgr = capture.read()
        assert ok
        if index in (3, 6, 9, 15, 16):  # the README's blink: frames ~14-17
            faces = pipeline.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 0.0, embed=False)
            openness[index] = faces[0].eyes.mean
    capture.release()
    open_level = np.median([openness[i] for i in (3, 6, 9)])
    assert min(openness[15], openness[16]) < 0.6 * open_level, openness
