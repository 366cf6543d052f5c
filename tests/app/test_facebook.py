"""FaceBook: from the pipeline's faces to the session's events, one scorer per track."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from device.core.config import LivenessConfig
from device.core.events import BlinkDetected, FaceLost, FaceSeen, LivenessRejected, SecondFace
from device.core.liveness import BlinkTracker, LivenessReason, LivenessVerdict
from device.shell.face_book import (
    FACE_LOST_AFTER_S,
    NO_FRAMES_LOST_AFTER_S,
    FaceBook,
    FrameFaces,
)


@dataclass
class Eyes:
    right: float
    left: float


@dataclass(frozen=True)
class Quality:
    ok: bool = True


@dataclass
class Face:
    track_id: int | None
    eyes: Eyes
    embedding: np.ndarray | None = None
    quality: Quality = field(default_factory=Quality)
    weight: float = 1.0


def _unit(*values: float) -> np.ndarray:
    v = np.array(values, np.float32)
    return v / np.linalg.norm(v)


def test_primary_and_second_faces_and_leaving() -> None:
    book = FaceBook(lambda: BlinkTracker(LivenessConfig()))
    big, small = Face(1, Eyes(0.3, 0.3)), Face(2, Eyes(0.3, 0.3))
    events = book.frame(FrameFaces(0.0, [big, small]), bound_track=None)
    assert events == [FaceSeen(0.0, 1, True), SecondFace(0.0, 2)]
    # the session is bound to track 2: it stays primary even when it is not the largest
    events = book.frame(FrameFaces(0.1, [big, small]), bound_track=2)
    assert events == [SecondFace(0.1, 1), FaceSeen(0.1, 2, True)]
    # track 2 leaves; one missed frame is not leaving, a longer absence is
    assert book.frame(FrameFaces(0.2, [big]), bound_track=2) == [FaceSeen(0.2, 1, True)]
    later = 0.1 + FACE_LOST_AFTER_S + 0.05
    assert FaceLost(later, 2) in book.frame(FrameFaces(later, [big]), bound_track=2)
    # no frame at all: vision may only be behind, so a track is let go later
    assert book.tick(later + FACE_LOST_AFTER_S + 0.1) == []
    assert book.tick(later + NO_FRAMES_LOST_AFTER_S + 0.1) == [
        FaceLost(later + NO_FRAMES_LOST_AFTER_S + 0.1, 1)
    ]


def test_a_blink_is_reported_for_its_own_track_only() -> None:
    book = FaceBook(lambda: BlinkTracker(LivenessConfig()))
    openness = [0.3] * 6 + [0.1, 0.05, 0.1] + [0.3] * 3  # 15 fps: ~200 ms closure
    blinks = []
    for i, value in enumerate(openness):
        blinker, still = Face(7, Eyes(value, value)), Face(8, Eyes(0.3, 0.3))
        events = book.frame(FrameFaces(i / 15, [blinker, still]), bound_track=7)
        blinks += [e for e in events if isinstance(e, BlinkDetected)]
    assert [b.track_id for b in blinks] == [7]


def test_fused_embedding_is_the_normalised_mean_of_good_frames() -> None:
    book = FaceBook(lambda: BlinkTracker(LivenessConfig()))
    book.frame(FrameFaces(0.0, [Face(3, Eyes(0.3, 0.3), _unit(1, 0))]), None)
    book.frame(FrameFaces(0.1, [Face(3, Eyes(0.3, 0.3), _unit(0, 1))]), None)
    bad = Face(3, Eyes(0.3, 0.3), _unit(-1, 0), Quality(ok=False))  # quality gate failed
    book.frame(FrameFaces(0.2, [bad]), None)
    fused = book.fused_embedding(3)
    assert fused is not None
    np.testing.assert_allclose(fused, _unit(1, 1), atol=1e-6)
    assert book.fused_embedding(99) is None
    book.clear()
    assert book.fused_embedding(3) is None


def test_fused_embedding_weights_each_frame_by_its_quality() -> None:
    book = FaceBook(lambda: BlinkTracker(LivenessConfig()))
    # a sharp frontal frame (weight 1) and a blurred, turned one (weight 0.25)
    book.frame(FrameFaces(0.0, [Face(4, Eyes(0.3, 0.3), _unit(1, 0), weight=1.0)]), None)
    book.frame(FrameFaces(0.1, [Face(4, Eyes(0.3, 0.3), _unit(0, 1), weight=0.25)]), None)
    # a frame with a broken weight is not fused at all
    broken = Face(4, Eyes(0.3, 0.3), _unit(-1, 0), weight=float("nan"))
    book.frame(FrameFaces(0.2, [broken]), None)
    fused = book.fused_embedding(4)
    assert fused is not None
    np.testing.assert_allclose(fused, _unit(1, 0.25), atol=1e-6)


def test_a_refusing_scorer_becomes_a_liveness_rejection_with_its_reason() -> None:
    class RefusingScorer:  # a cue that judges the scene an attack (e.g. a replay)
        def observe(self, timestamp: float, face: object) -> LivenessVerdict | None:
            return LivenessVerdict(False, LivenessReason.NO_BLINK)

    book = FaceBook(RefusingScorer)
    events = book.frame(FrameFaces(0.0, [Face(3, Eyes(0.3, 0.3))]), bound_track=None)
    assert LivenessRejected(0.0, 3, LivenessReason.NO_BLINK) in events
    assert not any(isinstance(e, BlinkDetected) for e in events)
