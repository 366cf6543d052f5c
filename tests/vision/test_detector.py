"""BlazeFace decoding: anchors, box/keypoint decoding, weighted NMS, letterbox mapping."""

from __future__ import annotations

import numpy as np
import pytest

from device.vision.detector import (
    NUM_KEYPOINTS,
    decode_boxes,
    generate_anchors,
    letterbox,
    sigmoid_scores,
    weighted_nms,
)


def test_anchor_layout_matches_mediapipe_short_range() -> None:
    anchors = generate_anchors()
    # stride 8: 16x16 cells x 2 anchors; strides 16 x3 share one 8x8 grid with 6 each
    assert anchors.shape == (16 * 16 * 2 + 8 * 8 * 6, 2)
    np.testing.assert_allclose(anchors[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[2], [1.5 / 16, 0.5 / 16])  # x varies fastest
    np.testing.assert_allclose(anchors[512], [0.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[512 + 6], [1.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(anchors[-1], [7.5 / 8, 7.5 / 8])


def _raw_for_box(anchor: np.ndarray, box_px: tuple[float, float, float, float]) -> np.ndarray:
    """The regressor values that encode box_px (input pixels) relative to an anchor."""
    x0, y0, x1, y1 = box_px
    ax, ay = anchor * 128
    raw = np.zeros(4 + 2 * NUM_KEYPOINTS, np.float32)
    raw[:4] = [(x0 + x1) / 2 - ax, (y0 + y1) / 2 - ay, x1 - x0, y1 - y0]
    for k in range(NUM_KEYPOINTS):
        raw[4 + 2 * k : 6 + 2 * k] = [x0 + 3 * k - ax, y0 + 2 * k - ay]
    return raw


def test_decode_recovers_known_boxes_and_keypoints() -> None:
    anchors = generate_anchors()
    known = {10: (10.0, 20.0, 50.0, 70.0), 600: (64.0, 30.0, 120.0, 100.0)}
    raw = np.zeros((len(anchors), 16), np.float32)
    for index, box in known.items():
        raw[index] = _raw_for_box(anchors[index], box)
    decoded = decode_boxes(raw, anchors)
    for index, (x0, y0, x1, y1) in known.items():
        np.testing.assert_allclose(decoded[index, 0] * 128, [x0, y0], atol=1e-4)
        np.testing.assert_allclose(decoded[index, 1] * 128, [x1, y1], atol=1e-4)
        expected_kp = [[x0 + 3 * k, y0 + 2 * k] for k in range(NUM_KEYPOINTS)]
        np.testing.assert_allclose(decoded[index, 2:] * 128, expected_kp, atol=1e-4)


def test_weighted_nms_blends_overlaps_and_keeps_separate_faces() -> None:
    anchors = generate_anchors()
    raw = np.zeros((len(anchors), 16), np.float32)
    scores = np.full(len(anchors), 0.01, np.float32)
    # two overlapping candidates for one face, one separate face
    raw[100] = _raw_for_box(anchors[100], (10, 10, 50, 50))
    raw[101] = _raw_for_box(anchors[101], (14, 14, 54, 54))
    raw[700] = _raw_for_box(anchors[700], (80, 80, 120, 120))
    scores[[100, 101, 700]] = [0.9, 0.6, 0.8]
    faces = weighted_nms(decode_boxes(raw, anchors), scores, min_score=0.5)
    assert len(faces) == 2
    (first, s1), (second, s2) = faces
    assert (s1, s2) == pytest.approx((0.9, 0.8))
    # score-weighted mean of the overlapping pair: 10 + 4 * 0.6 / 1.5 = 11.6
    np.testing.assert_allclose(first[0] * 128, [11.6, 11.6], atol=1e-3)
    np.testing.assert_allclose(second[:2].ravel() * 128, [80, 80, 120, 120], atol=1e-3)


def test_sigmoid_clips_extreme_logits() -> None:
    scores = sigmoid_scores(np.array([-1e6, 0.0, 1e6]))
    np.testing.assert_allclose(scores, [0.0, 0.5, 1.0], atol=1e-6)


def test_letterbox_maps_back_to_frame_pixels() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    square, box = letterbox(frame)
    assert square.shape == (128, 128, 3)
    point = np.array([[320.0, 240.0], [0.0, 0.0], [640.0, 480.0]])
    normalised = (point * box.scale + [box.pad_x, box.pad_y]) / 128
    np.testing.assert_allclose(box.to_frame(normalised), point, atol=1e-3)


@pytest.mark.data
def test_real_face_detected_near_centre(pipeline, lfw_dir) -> None:
    from device.vision.images import read_image

    rgb = read_image(lfw_dir / "images/Abdullah_Gul/Abdullah_Gul_0013.jpg")
    faces = pipeline.detector.detect(rgb)
    assert len(faces) >= 1
    best = max(faces, key=lambda f: f.score)
    cx, cy = (best.box[0] + best.box[2]) / 2, (best.box[1] + best.box[3]) / 2
    assert abs(cx - 125) < 25 and abs(cy - 125) < 35
    assert 70 < best.width < 200
