"""Blink liveness, pure: per-frame eye openness of one tracked face -> blink or not.

Input per frame: a timestamp (seconds, the camera's own timing) and the eye aspect ratio
of each eye (None when the face or its landmarks were not found in that frame). The
scorer learns the face's own open level per eye (the median of its recent open frames),
then looks for an episode where BOTH eyes drop under `closed_ratio` x that baseline and
come back over `reopen_ratio` x baseline. The episode is timed from the last open frame
before the drop to the first reopened frame, and only counts inside the human blink range
(blink_min_ms..blink_max_ms) without a frame gap longer than `max_frame_gap_ms`.

So a photo or a still face (eyes never move), a wink (one eye), a slow eye closing, a
single noisy landmark frame on one eye, or a stretch without a face never make a blink.
Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from device.core.config import LivenessConfig

MAX_OPENNESS = 2.0  # an eye aspect ratio above this is a landmark failure, not an eye
KEPT_BLINKS = 64  # a track can live for hours: remember only the latest blinks


class LivenessReason(StrEnum):
    BLINK = "blink"
    NO_BLINK = "no_blink"  # eyes measured and open throughout: a still face
    WINK = "wink"  # one eye closed while the other stayed open
    BLINK_TOO_FAST = "blink_too_fast"
    BLINK_TOO_SLOW = "blink_too_slow"  # eyes closed longer than a blink
    FRAME_GAP = "frame_gap"  # a closure that frame gaps made impossible to time
    EYES_CLOSED = "eyes_closed"  # no open baseline: eyes shut or not measurable
    NO_FACE = "no_face"  # too few frames with eyes measured


# When nothing counted, the most telling thing seen explains the refusal (first wins).
_REFUSAL_ORDER = (
    LivenessReason.BLINK_TOO_FAST,
    LivenessReason.BLINK_TOO_SLOW,
    LivenessReason.FRAME_GAP,
    LivenessReason.WINK,
)


@dataclass(frozen=True)
class LivenessVerdict:
    """A liveness cue's word on one tracked face: live (the customer's blink, their intent),
    or refused with the reason. A scorer answers None while it has nothing to say yet."""

    live: bool
    reason: LivenessReason


BLINKED = LivenessVerdict(True, LivenessReason.BLINK)


@dataclass(frozen=True)
class EyeSample:
    t: float  # seconds
    right: float | None  # eye aspect ratio of the subject's right eye; None: not measured
    left: float | None


@dataclass(frozen=True)
class Blink:
    start: float  # last open frame before the closure
    end: float  # first reopened frame
    depth: float  # 0..1: how far the LESS closed eye dropped under its baseline

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start) * 1000.0


@dataclass(frozen=True)
class LivenessResult:
    live: bool
    reason: LivenessReason
    score: float  # 0..1: the deepest both-eye closure seen in any timed episode
    blinks: tuple[Blink, ...]
    frames: int  # samples with both eyes measured
    episodes: tuple[tuple[LivenessReason, int], ...] = ()  # what else was seen, counted


class EyesLike(Protocol):
    @property
    def right(self) -> float: ...
    @property
    def left(self) -> float: ...


class FaceLike(Protocol):
    """device.vision.pipeline.FaceResult fits this."""

    @property
    def eyes(self) -> EyesLike: ...


def _valid(value: float | None) -> float | None:
    if value is None or not math.isfinite(value) or not 0.0 <= value <= MAX_OPENNESS:
        return None
    return float(value)


@dataclass
class _Dip:
    start: float  # last open frame before it
    min_right: float = math.inf  # lowest ratio to baseline, per eye
    min_left: float = math.inf
    both_closed: bool = False
    one_closed: bool = False
    gap: bool = False


@dataclass
class BlinkTracker:
    """Incremental scorer for one tracked face; feed frames in time order.

    `update` answers with the Blink when one completes. `observe` is the same for the
    shell's per-track protocol (device.shell.face_book.LivenessScorer): BLINKED or None; a
    wink or a slow blink is no refusal while the window lasts (a real blink may follow).
    `verdict` says, at any moment, what the face showed so far.
    """

    cfg: LivenessConfig
    _window: deque[tuple[float, float, float]] = field(default_factory=deque, init=False)
    _last_t: float | None = field(default=None, init=False)
    _last_measured: float | None = field(default=None, init=False)
    _last_open: float | None = field(default=None, init=False)
    _dip: _Dip | None = field(default=None, init=False)
    _blinks: deque[Blink] = field(default_factory=lambda: deque(maxlen=KEPT_BLINKS), init=False)
    _seen: dict[LivenessReason, int] = field(default_factory=dict, init=False)
    _frames: int = field(default=0, init=False)
    _had_baseline: bool = field(default=False, init=False)
    _score: float = field(default=0.0, init=False)

    # ------------------------------------------------------------ public

    def update(self, t: float, right: float | None, left: float | None) -> Blink | None:
        if not math.isfinite(t) or (self._last_t is not None and t <= self._last_t):
            return None  # out of order or repeated: the timing would lie
        self._last_t = t
        right, left = _valid(right), _valid(left)
        if right is None or left is None:
            return None  # a missing frame only matters through the gap it leaves
        last = self._last_measured
        if last is not None and (t - last) * 1000.0 > self.cfg.max_frame_gap_ms:
            self._on_gap()
        self._last_measured = t
        self._frames += 1
        baseline = self._baseline()
        if baseline is None:
            self._learn(t, right, left)
            return None
        ratio_r, ratio_l = right / baseline[0], left / baseline[1]
        if self._dip is None:
            if min(ratio_r, ratio_l) >= self.cfg.reopen_ratio:
                self._learn(t, right, left)
                return None
            if self._last_open is None:
                return None  # just after a gap: a closure needs an open frame before it
            self._dip = _Dip(self._last_open)
        return self._in_dip(t, ratio_r, ratio_l, right, left)

    def observe(self, timestamp: float, face: FaceLike) -> LivenessVerdict | None:
        eyes = face.eyes
        return BLINKED if self.update(timestamp, eyes.right, eyes.left) else None

    def verdict(self) -> LivenessVerdict:
        result = self.result()
        return LivenessVerdict(result.live, result.reason)

    def result(self) -> LivenessResult:
        blinks = tuple(self._blinks)
        episodes = tuple(sorted(self._seen.items()))
        if blinks:
            reason = LivenessReason.BLINK
        elif self._frames < self.cfg.baseline_frames + 1:
            reason = LivenessReason.NO_FACE
        elif not self._had_baseline:
            reason = LivenessReason.EYES_CLOSED
        else:
            reason = next((r for r in _REFUSAL_ORDER if r in self._seen), LivenessReason.NO_BLINK)
        return LivenessResult(
            bool(blinks), reason, round(self._score, 4), blinks, self._frames, episodes
        )

    # ------------------------------------------------------------ internals

    def _baseline(self) -> tuple[float, float] | None:
        if len(self._window) < self.cfg.baseline_frames:
            return None
        right = statistics.median(r for _, r, _ in self._window)
        left = statistics.median(lo for _, _, lo in self._window)
        if min(right, left) < self.cfg.min_open_openness:
            # eyes shut (or landmarks that cannot see them): nothing to blink from
            self._window.clear()
            self._last_open = None
            return None
        self._had_baseline = True
        return right, left

    def _learn(self, t: float, right: float, left: float) -> None:
        self._window.append((t, right, left))
        while self._window and t - self._window[0][0] > self.cfg.baseline_window_s:
            self._window.popleft()
        self._last_open = t

    def _on_gap(self) -> None:
        if self._dip is not None:
            self._dip.gap = True
        else:
            self._last_open = None  # the next closure could not be timed from before the gap

    def _count(self, reason: LivenessReason) -> None:
        self._seen[reason] = self._seen.get(reason, 0) + 1

    def _in_dip(
        self, t: float, ratio_r: float, ratio_l: float, right: float, left: float
    ) -> Blink | None:
        dip, cfg = self._dip, self.cfg
        assert dip is not None
        if min(ratio_r, ratio_l) < cfg.reopen_ratio:  # still (partly) closed
            dip.min_right, dip.min_left = min(dip.min_right, ratio_r), min(dip.min_left, ratio_l)
            if max(ratio_r, ratio_l) < cfg.closed_ratio:
                dip.both_closed = True
            elif min(ratio_r, ratio_l) < cfg.closed_ratio:
                dip.one_closed = True
            if (t - dip.start) > cfg.baseline_window_s:
                # closed (or narrowed) for ages: not a blink; relearn the open level
                if dip.both_closed:
                    self._count(LivenessReason.BLINK_TOO_SLOW)
                self._dip, self._last_open = None, None
                self._window.clear()
            return None
        # reopened: judge the episode
        self._dip = None
        depth = max(0.0, min(1.0, 1.0 - max(dip.min_right, dip.min_left)))
        blink = self._judge(dip, t, depth)
        self._learn(t, right, left)
        return blink

    def _judge(self, dip: _Dip, t: float, depth: float) -> Blink | None:
        cfg = self.cfg
        if dip.gap:
            if dip.both_closed:
                self._count(LivenessReason.FRAME_GAP)
            return None
        self._score = max(self._score, depth)
        if not dip.both_closed:
            if dip.one_closed:
                self._count(LivenessReason.WINK)
            return None  # a shallow dip: squint, gaze or landmark noise
        duration_ms = (t - dip.start) * 1000.0
        if duration_ms < cfg.blink_min_ms:
            self._count(LivenessReason.BLINK_TOO_FAST)
            return None
        if duration_ms > cfg.blink_max_ms:
            self._count(LivenessReason.BLINK_TOO_SLOW)
            return None
        blink = Blink(dip.start, t, round(depth, 4))
        self._blinks.append(blink)
        return blink


def score_series(samples: Iterable[EyeSample], cfg: LivenessConfig) -> LivenessResult:
    """The verdict for a whole capture (eval, tests): live when at least one blink."""
    tracker = BlinkTracker(cfg)
    for sample in samples:
        tracker.update(sample.t, sample.right, sample.left)
    return tracker.result()
