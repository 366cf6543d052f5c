"""Runs the illumination challenge for the session: plays the code on the challenge light,
collects the bound face's luminance from each processed frame, and has the core judge it
bit by bit: one look per bit from the first look on (device.core.challenge.first_look),
each taken once, at the first frame after that bit has reached the camera at every lag
tried. The first look that passes ends the code early (the light goes dark); the last
look's verdict stands otherwise.

The session asks with a StartChallenge effect and hears back through a ChallengeDone
event. Frames and the light share the monotonic clock (frames are stamped on arrival, the
light switches on the pattern scheduler), and the core tries a few frames of camera lag.
Only luminance figures are kept: never a frame.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from device.core.challenge import (
    ChallengeVerdict,
    LightSample,
    complete_at,
    first_look,
    frame_interval,
    judge,
)
from device.core.config import ChallengeConfig
from device.core.events import ChallengeDone, Event, StartChallenge
from device.hw.challenge_light import ChallengeLight
from device.shell.face_book import FrameFaces

log = logging.getLogger("blinkpay.challenge")

NO_FRAMES_GRACE_S = 1.0  # after the code ends, how long to wait for frames before judging
FRAMES_PER_BIT = 3  # a bit lasts at least this many processed frames (two clean)
MAX_STRETCH = 2.0  # ... but never longer than this many times the configured bit
RECENT_FRAMES = 30  # processed frames the frame rate is measured over


@dataclass
class _Run:
    track_id: int
    code: tuple[bool, ...]
    start: float
    cfg: ChallengeConfig  # with the bit length this run plays
    samples: list[LightSample] = field(default_factory=list)
    looked: int = 0  # the bits judged at the last look taken


class ChallengeRunner:
    def __init__(
        self,
        light: ChallengeLight,
        cfg: ChallengeConfig,
        observer: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.light, self.cfg, self.observer = light, cfg, observer
        self._run: _Run | None = None
        first = first_look(cfg)
        if first is None:
            raise ValueError("the challenge config has no look within its false-accept bound")
        self.first_look = first
        self._recent: deque[float] = deque(maxlen=RECENT_FRAMES)  # processed frame times

    def bit_ms(self) -> int:
        """The configured bit, stretched when the vision processes fewer frames than it
        needs (a busy CPU, a Pi 4 at 30 fps): three processed frames a bit, up to twice
        the configured length. The false-accept bound does not depend on the bit length;
        a longer bit only takes longer."""
        if len(self._recent) < 2 or self._recent[-1] <= self._recent[0]:
            return self.cfg.bit_ms
        # the mean interval, not the median: frames the vision skipped count
        interval = (self._recent[-1] - self._recent[0]) / (len(self._recent) - 1)
        needed = math.ceil(FRAMES_PER_BIT * interval * 1000.0 - 1e-6)  # float dust
        return int(min(max(self.cfg.bit_ms, needed), self.cfg.bit_ms * MAX_STRETCH))

    @property
    def running(self) -> bool:
        return self._run is not None

    def start(self, effect: StartChallenge) -> None:
        bit_ms = max(effect.bit_ms, self.bit_ms())
        start = self.light.play_code(effect.code, bit_ms / 1000.0)
        self._run = _Run(effect.track_id, effect.code, start, replace(self.cfg, bit_ms=bit_ms))

    def stop(self) -> None:
        self._run = None
        self.light.off()

    def frame(self, frame: FrameFaces) -> list[Event]:
        """Take the bound face's luminance; at each look now due, the core's verdict."""
        self._recent.append(frame.timestamp)
        run = self._run
        if run is None:
            return []
        face = next((f for f in frame.faces if f.track_id == run.track_id), None)
        light = getattr(face, "light", None)
        if light is not None:
            run.samples.append(LightSample(frame.timestamp, light.face, light.background))
        interval = frame_interval(run.samples)
        if interval is None:
            return []
        bits = len(run.code)
        for k in range(max(self.first_look, run.looked + 1), bits + 1):
            if frame.timestamp < complete_at(run.start, run.cfg, interval, k):
                break
            run.looked = k
            verdict = judge(run.samples, run.code, run.start, run.cfg, bits=k)
            if verdict.passed or k == bits:
                return self._done(frame.timestamp, verdict)
        return []

    def tick(self, now: float) -> list[Event]:
        """Frames stopped coming (camera stalled, face gone): the last look, on what there is."""
        run = self._run
        if run is None or now < run.start + run.cfg.duration_s + NO_FRAMES_GRACE_S:
            return []
        return self._done(now, judge(run.samples, run.code, run.start, run.cfg))

    def _done(self, now: float, verdict: ChallengeVerdict) -> list[Event]:
        run = self._run
        assert run is not None
        self.stop()
        figures = {
            "passed": verdict.passed,
            "reason": verdict.reason.value,
            "margin": verdict.margin,
            "contrast": verdict.contrast,
            "lag_frames": verdict.lag_frames,
            "frames": verdict.frames,
            "fps": verdict.fps,
            "bits": verdict.bits,
            "bit_ms": run.cfg.bit_ms,
            "seconds": round(now - run.start, 3),
        }
        log.info("challenge %s", verdict.reason.value, extra={"event": "challenge", **figures})
        if self.observer is not None:
            self.observer("challenge", figures)
        return [ChallengeDone(now, run.track_id, verdict)]
