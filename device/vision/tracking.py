"""Face tracking across frames: greedy IoU matching, stable ids per person in view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device.vision.detector import iou


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    last_seen: float


class FaceTracker:
    """Assigns each detection the id of the track it overlaps most (IoU >= min_iou);
    new faces get new ids; a track unseen for max_age_s seconds is forgotten.
    Ids are never reused, so a new id means "possibly a different person"."""

    def __init__(self, min_iou: float = 0.3, max_age_s: float = 1.0) -> None:
        self.min_iou = min_iou
        self.max_age_s = max_age_s
        self._tracks: list[_Track] = []
        self._next_id = 1

    def update(self, boxes: list[tuple[float, float, float, float]], timestamp: float) -> list[int]:
        self._tracks = [t for t in self._tracks if timestamp - t.last_seen <= self.max_age_s]
        ids = [0] * len(boxes)
        if self._tracks and boxes:
            track_boxes = np.array([t.box for t in self._tracks])
            scores = np.array([iou(np.asarray(b, np.float64), track_boxes) for b in boxes])
            # greedy by best overlap: each track and each detection used once
            for flat in np.argsort(-scores, axis=None):
                d, t = np.unravel_index(flat, scores.shape)
                if scores[d, t] < 0:  # detection or track already taken
                    continue
                if scores[d, t] < self.min_iou:
                    break
                ids[d] = self._tracks[t].track_id
                self._tracks[t].box = np.asarray(boxes[d], np.float64)
                self._tracks[t].last_seen = timestamp
                scores[:, t] = -1.0
                scores[d, :] = -1.0
        for d, box in enumerate(boxes):
            if not ids[d]:
                ids[d] = self._next_id
                self._tracks.append(_Track(self._next_id, np.asarray(box, np.float64), timestamp))
                self._next_id += 1
        return ids

    def reset(self) -> None:
        self._tracks.clear()
