"""A blink on the camera path: a burst of frames from the browser camera, measured with the
terminal's own pipeline (eye openness) and liveness rule (device.core.liveness), so a photo
held up to the camera does not enrol. A live burst gives a one-time proof, bound to the
operator's session and to the face that blinked; the enrolment then needs the proof and a
template of the same person."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backend.console.i18n import N_
from device.core.config import LivenessConfig
from device.core.liveness import EyeSample, LivenessReason, LivenessResult, score_series
from device.vision.pipeline import FacePipeline
from device.vision.templates import weighted_fusion

MAX_FRAMES = 60
EMBED_FRAMES = 5  # good frames of the burst fused into the blinking face's embedding
PROOF_TTL_S = 300.0
# The budget of /api/blink: a browser camera frame (640x480 JPEG, ~100 KB) fits with room;
# each frame is scaled to BLINK_SIDE px right after decoding, and at most BURSTS_AT_ONCE
# bursts are measured at a time, so the decoded frames never exceed
# BURSTS_AT_ONCE * MAX_FRAMES * 640 * 480 * 3 bytes (about 110 MB), whatever is sent.
MAX_FRAME_BYTES = 512 * 1024
MAX_FRAME_PIXELS = 1920 * 1080
BLINK_SIDE = 640
BURSTS_AT_ONCE = 2
BURSTS_PER_MINUTE = 12  # per operator: a blink check takes a few seconds of a person

# Why a burst is no proof, as the operator reads it (the page adds "try again").
NOT_LIVE = {
    LivenessReason.NO_BLINK: N_("the eyes stayed open, no blink seen"),
    LivenessReason.WINK: N_("one eye closed, not both"),
    LivenessReason.BLINK_TOO_FAST: N_("too quick for a blink"),
    LivenessReason.BLINK_TOO_SLOW: N_("eyes closed too long for a blink"),
    LivenessReason.FRAME_GAP: N_("frames were missing around the blink"),
    LivenessReason.EYES_CLOSED: N_("the eyes were never seen open"),
    LivenessReason.NO_FACE: N_("too few frames with the face's eyes measured"),
    # a blink, but no frame of the face good enough to bind the proof to
    LivenessReason.BLINK: N_("no sharp frame of the face: face the camera in good light"),
}


class BlinkBudget:
    """How many bursts run at once (all operators) and how often one operator may send."""

    def __init__(self, at_once: int = BURSTS_AT_ONCE, per_minute: int = BURSTS_PER_MINUTE):
        self.at_once, self.per_minute = at_once, per_minute
        self._lock = threading.Lock()
        self._running = 0
        self._recent: dict[str, list[float]] = {}

    def take(self, who: str) -> str | None:
        """None when the burst may run (call `give_back` after), else the refusal reason."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._recent.get(who, []) if now - t < 60.0]
            self._recent[who] = recent
            if len(recent) >= self.per_minute:
                return "blink_rate_limited"
            if self._running >= self.at_once:
                return "blink_busy"
            recent.append(now)
            self._running += 1
            return None

    def give_back(self) -> None:
        with self._lock:
            self._running -= 1


@dataclass(frozen=True)
class BlinkCheck:
    result: LivenessResult
    embedding: np.ndarray | None  # the blinking face, to bind the proof to the person


def measure(
    pipeline: FacePipeline, frames: Sequence[tuple[float, np.ndarray]], cfg: LivenessConfig
) -> BlinkCheck:
    """Eye openness of the largest face of each frame (time in seconds), scored as the
    terminal scores a tracked face. Up to EMBED_FRAMES good-quality frames, spread over
    the burst, are embedded and fused by their quality weights (as the terminal fuses a
    track: device.vision.templates.weighted_fusion) into the blinking face's embedding."""
    samples: list[EyeSample] = []
    good = []
    for t, rgb in frames:
        faces = pipeline.process(rgb, t, track=False, embed=False, passive=False)
        if not faces or faces[0].eyes is None:
            samples.append(EyeSample(t, None, None))
            continue
        face = faces[0]
        samples.append(EyeSample(t, face.eyes.right, face.eyes.left))
        if face.quality.ok:
            good.append(face)
    embedding = None
    if good:
        step = max(1, -(-len(good) // EMBED_FRAMES))  # ceil: at most EMBED_FRAMES embedded
        chosen = good[::step][:EMBED_FRAMES]
        embedding = weighted_fusion(
            [pipeline.embed(face) for face in chosen], [face.weight for face in chosen]
        )
    return BlinkCheck(score_series(samples, cfg), embedding)


class BlinkProofs:
    """One-time proofs of a live blink, per session; kept in memory for five minutes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proofs: dict[str, tuple[str, float, np.ndarray]] = {}

    def issue(self, session_key: str, embedding: np.ndarray) -> str:
        proof = secrets.token_urlsafe(16)
        now = time.monotonic()
        with self._lock:
            self._proofs = {k: v for k, v in self._proofs.items() if v[1] > now}
            self._proofs[proof] = (session_key, now + PROOF_TTL_S, embedding)
        return proof

    def take(self, session_key: str, proof: str) -> np.ndarray | None:
        """The blinking face's embedding, once, for the session that made the proof."""
        with self._lock:
            held = self._proofs.pop(proof, None)
        if held is None or held[0] != session_key or held[1] < time.monotonic():
            return None
        return held[2]
