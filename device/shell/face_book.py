"""From the vision pipeline's faces to the session's events, per tracked face.

One `FaceBook` lives on the main thread. For every processed frame it says which face
the session should look at (the bound track, else the largest), which other faces are in
view, which tracks have left, feeds each track's eye openness to its liveness scorer, and
keeps the track's recent embeddings so a match fuses several frames (DESIGN: the terminal
sees many frames, a photo benchmark sees one): the quality-weighted mean of the last
EMBEDDINGS_PER_TRACK good frames, each weighted by its sharpness, pose, size and eyes open
(device.vision.quality.fusion_weight). No image is kept: only vectors and scores.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from device.core.events import (
    BlinkDetected,
    Event,
    FaceLost,
    FaceSeen,
    LivenessRejected,
    PassiveSeen,
    SecondFace,
)
from device.core.liveness import LivenessVerdict
from device.vision.templates import TemplateError, weighted_fusion

FACE_LOST_AFTER_S = 0.6  # a track missed for this long has left (one missed frame has not)
# with no processed frame at all (camera stalled, or vision behind on a busy CPU), a track
# is let go only after this: frames that arrive late still say where the face is
NO_FRAMES_LOST_AFTER_S = 2.0
EMBEDDINGS_PER_TRACK = 8


class LivenessScorer(Protocol):
    """Per-track liveness: fed every frame's eye openness, answers with a verdict."""

    def observe(self, timestamp: float, face: Any) -> LivenessVerdict | None:
        """None (nothing to say yet), live (the blink), or a refusal with its reason."""
        ...


@dataclass
class _Track:
    track_id: int
    last_seen: float
    scorer: LivenessScorer
    # (embedding, fusion weight) of the track's recent good frames
    embeddings: deque[tuple[np.ndarray, float]] = field(
        default_factory=lambda: deque(maxlen=EMBEDDINGS_PER_TRACK)
    )
    # the vectors of the embedder a shard migrates to (device/shell/migration.py), by version
    next_embeddings: deque[tuple[np.ndarray, float]] = field(
        default_factory=lambda: deque(maxlen=EMBEDDINGS_PER_TRACK)
    )
    next_version: str | None = None
    version: str | None = None  # the embedder of `embeddings`
    blinked: bool = False
    passive_at: float | None = None  # time of the last passive verdict passed on


@dataclass(frozen=True)
class FrameFaces:
    """What the vision worker posts to the main loop for one frame."""

    timestamp: float
    faces: Sequence[Any]  # device.vision.pipeline.FaceResult, largest first


def _fresh_passive(track: _Track, face: Any, now: float) -> list[Event]:
    """A passive verdict the session has not heard yet (the cue runs at a bounded rate and
    faces carry their track's last score between runs); no_verdict is never passed on."""
    score = getattr(face, "passive", None)
    if score is None or score.verdict == "no_verdict" or score.timestamp == track.passive_at:
        return []
    track.passive_at = score.timestamp
    return [PassiveSeen(now, track.track_id, score.verdict == "real")]


def _keep(
    kept: deque[tuple[np.ndarray, float]],
    track: _Track,
    tag: str,
    vector: Any,
    weight: float,
    version: str | None,
) -> None:
    """Add a (vector, fusion weight) to the track's; those of another embedder (it changed
    mid-track) are dropped first: vectors of two embedders are never fused."""
    if getattr(track, tag) != version:
        kept.clear()
        setattr(track, tag, version)
    kept.append((np.asarray(vector, np.float32), weight))


def _fuse(kept: deque[tuple[np.ndarray, float]]) -> np.ndarray | None:
    """The quality-weighted mean, L2-normalised (device.vision.templates.weighted_fusion)."""
    if not kept:
        return None
    try:
        return weighted_fusion([v for v, _ in kept], [w for _, w in kept])
    except TemplateError:  # they cancel out: no usable query
        return None


class FaceBook:
    def __init__(self, new_scorer: Callable[[], LivenessScorer]) -> None:
        self._new_scorer = new_scorer
        self._tracks: dict[int, _Track] = {}

    def frame(self, frame: FrameFaces, bound_track: int | None) -> list[Event]:
        now = frame.timestamp
        events: list[Event] = []
        faces = [f for f in frame.faces if f.track_id is not None]
        primary = next((f for f in faces if f.track_id == bound_track), None)
        if primary is None and faces:
            primary = faces[0]
        for face in faces:
            track = self._tracks.get(face.track_id)
            if track is None:
                track = _Track(face.track_id, now, self._new_scorer())
                self._tracks[face.track_id] = track
            track.last_seen = now
            if face.embedding is not None and face.quality.ok:
                weight = float(getattr(face, "weight", 1.0))
                if np.isfinite(weight) and weight > 0.0:
                    version = getattr(face, "embedder_version", None)
                    _keep(track.embeddings, track, "version", face.embedding, weight, version)
                    extra = getattr(face, "next_embedding", None)
                    if extra is not None:
                        version = getattr(face, "next_embedder_version", None)
                        _keep(track.next_embeddings, track, "next_version", extra, weight, version)
            verdict = track.scorer.observe(now, face)
            if face is primary:
                events.append(FaceSeen(now, face.track_id, bool(face.quality.ok)))
            else:
                events.append(SecondFace(now, face.track_id))
            if verdict is not None and verdict.live:
                track.blinked = True
                events.append(BlinkDetected(now, face.track_id))
            elif verdict is not None:
                events.append(LivenessRejected(now, face.track_id, verdict.reason))
            events += _fresh_passive(track, face, now)
        for track_id in [
            t for t, tr in self._tracks.items() if now - tr.last_seen > FACE_LOST_AFTER_S
        ]:
            del self._tracks[track_id]
            events.append(FaceLost(now, track_id))
        return events

    def tick(self, now: float) -> list[Event]:
        """Tracks that left while no frame came at all (camera stalled or scene empty)."""
        gone = [t for t, tr in self._tracks.items() if now - tr.last_seen > NO_FRAMES_LOST_AFTER_S]
        for track_id in gone:
            del self._tracks[track_id]
        return [FaceLost(now, track_id) for track_id in gone]

    def fused_embedding(self, track_id: int) -> np.ndarray | None:
        """The quality-weighted mean of the track's recent good embeddings, L2-normalised;
        None if none."""
        track = self._tracks.get(track_id)
        return None if track is None else _fuse(track.embeddings)

    def embedding_version(self, track_id: int) -> str | None:
        """The embedder of the track's embeddings (a probe names it to the store)."""
        track = self._tracks.get(track_id)
        return None if track is None else track.version

    def fused_next(self, track_id: int, version: str) -> tuple[np.ndarray, int] | None:
        """The track's vectors of the migration's embedder, fused as the match fuses its
        own, and how many frames went in; None when there are none of that version."""
        track = self._tracks.get(track_id)
        if track is None or track.next_version != version:
            return None
        fused = _fuse(track.next_embeddings)
        return None if fused is None else (fused, len(track.next_embeddings))

    def clear(self) -> None:
        self._tracks.clear()
