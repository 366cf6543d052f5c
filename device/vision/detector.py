"""BlazeFace short-range face detector: letterbox, SSD anchors, box decoding, weighted NMS.

Follows MediaPipe's face_detection_short_range graph: a 128x128 input, anchors from
strides 8,16,16,16 (896 of them, fixed size), raw outputs relative to the anchor
centres in input pixels, sigmoid scores from clipped logits, and "weighted" NMS
(overlapping boxes are blended by score instead of dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.vision.models import Manifest, load_model
from device.vision.runtime import dequantise, quantise

INPUT_SIZE = 128
STRIDES = (8, 16, 16, 16)
NUM_KEYPOINTS = 6
RAW_SCORE_LIMIT = 100.0  # MediaPipe clips logits to +-100 before the sigmoid
NMS_IOU = 0.3


@dataclass(frozen=True)
class Detection:
    """One face in frame pixels. Keypoints (6, 2), in MediaPipe order: subject's right
    eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion
    (for an unmirrored camera the subject's right eye is on the image's left)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    keypoints: np.ndarray

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def generate_anchors(
    input_size: int = INPUT_SIZE, strides: tuple[int, ...] = STRIDES
) -> np.ndarray:
    """SSD anchor centres (N, 2), normalised, as MediaPipe's SsdAnchorsCalculator with
    interpolated_scale_aspect_ratio=1: two anchors per cell per layer, and layers that
    share a stride share one grid."""
    anchors: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        same = layer
        repeats = 0
        while same < len(strides) and strides[same] == strides[layer]:
            repeats += 2
            same += 1
        cells = input_size // strides[layer]
        centres = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        xs, ys = np.meshgrid(centres, centres)  # row-major: y outer, x inner
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        anchors.append(np.repeat(grid, repeats, axis=0))
        layer = same
    return np.concatenate(anchors).astype(np.float32)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, input_size: int = INPUT_SIZE) -> np.ndarray:
    """Raw regressors (N, 4+2K) to (N, 2+K, 2) normalised points: rows 0-1 are the box's
    top-left and bottom-right, the rest are keypoints."""
    points = raw.reshape(raw.shape[0], raw.shape[1] // 2, 2).astype(np.float32) / input_size
    centre = points[:, 0] + anchors
    half = points[:, 1] / 2.0
    keypoints = points[:, 2:] + anchors[:, None, :]
    return np.concatenate([(centre - half)[:, None], (centre + half)[:, None], keypoints], axis=1)


def sigmoid_scores(logits: np.ndarray) -> np.ndarray:
    clipped = np.clip(logits.astype(np.float64).ravel(), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
    return (1.0 / (1.0 + np.exp(-clipped))).astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box a (4,) [x0,y0,x1,y1] with boxes b (M, 4)."""
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[2], b[:, 2])
    y1 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(
    decoded: np.ndarray, scores: np.ndarray, min_score: float, iou_threshold: float = NMS_IOU
) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-max suppression: each kept face is the score-weighted mean
    of every remaining candidate overlapping the best one; its score is the best's."""
    keep = np.flatnonzero((scores >= min_score) & np.all(decoded[:, 1] > decoded[:, 0], axis=1))
    order = keep[np.argsort(-scores[keep], kind="stable")]
    results: list[tuple[np.ndarray, float]] = []
    while order.size:
        boxes = decoded[order, :2].reshape(-1, 4)
        overlaps = iou(boxes[0], boxes)
        group = order[overlaps > iou_threshold]
        weights = scores[group]
        blended = (decoded[group] * weights[:, None, None]).sum(axis=0) / weights.sum()
        results.append((blended, float(scores[order[0]])))
        order = order[overlaps <= iou_threshold]
    return results


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the square input: scale and padding in input pixels."""

    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, normalised: np.ndarray, input_size: int = INPUT_SIZE) -> np.ndarray:
        """Normalised input coordinates (..., 2) back to frame pixels."""
        pixels = normalised * input_size
        return (pixels - np.array([self.pad_x, self.pad_y], np.float32)) / self.scale


def letterbox(rgb: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad (black, centred) to size x size."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    new_w = max(1, round(width * scale))
    new_h = max(1, round(height * scale))
    # halve first while shrinking by more than 2 (no aliasing), then bilinear as
    # MediaPipe does: several times cheaper than INTER_AREA on camera frames
    source = rgb
    while max(source.shape[:2]) > 2 * size:
        source = cv2.pyrDown(source)
    resized = cv2.resize(source, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x = (size - new_w) // 2
    pad_y = (size - new_h) // 2
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    # the real scale per axis after rounding, so boxes map back exactly
    return canvas, Letterbox(scale=new_w / width, pad_x=float(pad_x), pad_y=float(pad_y))


class FaceDetector:
    def __init__(self, manifest: Manifest, threads: int, min_score: float) -> None:
        self.entry, self.model = load_model(manifest, "detector", threads)
        self.min_score = min_score
        self.anchors = generate_anchors(self.entry.input_shape[1])
        self._range = self.entry.input_range()
        boxes_name = self.entry.output_tensor_name("boxes")
        scores_name = self.entry.output_tensor_name("scores")
        n = self.anchors.shape[0]
        self._boxes = next(
            (o for o in self.model.outputs if o.name == boxes_name),
            self.model.output_by_size(n * (4 + 2 * NUM_KEYPOINTS)),
        )
        self._scores = next(
            (o for o in self.model.outputs if o.name == scores_name), self.model.output_by_size(n)
        )

    def preprocess(self, rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        size = self.entry.input_shape[1]
        square, box = letterbox(rgb, size)
        low, high = self._range or (0.0, 255.0)
        values = square.astype(np.float32) * ((high - low) / 255.0) + low
        return quantise(values[None], self.model.inputs[0]), box

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        tensor, box = self.preprocess(rgb)
        outputs = self.model.run(tensor)
        raw = dequantise(outputs[self._boxes.index], self._boxes).reshape(len(self.anchors), -1)
        scores = sigmoid_scores(dequantise(outputs[self._scores.index], self._scores))
        candidates = np.flatnonzero(scores >= self.min_score)  # decode only these
        decoded = decode_boxes(raw[candidates], self.anchors[candidates], self.entry.input_shape[1])
        height, width = rgb.shape[:2]
        faces = []
        for points, score in weighted_nms(decoded, scores[candidates], self.min_score):
            frame = box.to_frame(points, self.entry.input_shape[1])
            x0, y0 = np.clip(frame[0], 0, [width, height])
            x1, y1 = np.clip(frame[1], 0, [width, height])
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            faces.append(Detection((float(x0), float(y0), float(x1), float(y1)), score, frame[2:]))
        return faces
