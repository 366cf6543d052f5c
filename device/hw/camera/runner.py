"""Runs a frame source in a capture thread: newest-frame handoff, fps, stall detection."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from device.clock import Clock
from device.hw.camera.frames import FpsMeter, Frame, FrameSource, LatestFrame, StallWatchdog

log = logging.getLogger(__name__)

ERROR_BACKOFF_S = 0.2  # after a failed read, so a broken camera does not spin a core


@dataclass(frozen=True)
class CameraHealth:
    source: str
    frames: int
    dropped: int
    errors: int
    fps: float
    stalled: bool
    stalls: int
    last_frame_age_s: float
    ended: bool

    def to_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


class CameraRunner:
    def __init__(
        self,
        source: FrameSource,
        clock: Clock,
        stall_after_s: float = 2.0,
        on_stall: Callable[[CameraHealth], None] | None = None,
    ) -> None:
        self.source, self._clock = source, clock
        self.latest = LatestFrame()
        self._meter = FpsMeter()
        self._watchdog = StallWatchdog(stall_after_s, clock.monotonic())
        self._on_stall = on_stall
        self._lock = threading.Lock()
        self._frames = self._errors = 0
        self._ended = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._arrived = threading.Condition(self._lock)

    def start(self) -> None:
        if self._thread is not None:
            return
        self.source.start()
        with self._lock:
            self._watchdog.frame(self._clock.monotonic())  # the stall clock starts now
        self._thread = threading.Thread(target=self._capture, name="camera", daemon=True)
        self._thread.start()

    def _capture(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.source.read()
            except Exception as exc:  # a camera error must not kill capture; the watchdog reports
                with self._lock:
                    self._errors += 1
                log.warning("camera %s read failed: %s", self.source.name, exc)
                self._stop.wait(ERROR_BACKOFF_S)
                continue
            if frame is None:
                with self._arrived:
                    self._ended = True
                    self._arrived.notify_all()
                self.latest.close()
                return
            self._deliver(frame)

    def _deliver(self, frame: Frame) -> None:
        now = self._clock.monotonic()
        with self._arrived:
            self._frames += 1
            self._meter.add(now)
            if self._watchdog.frame(now):
                log.warning("camera %s delivering again", self.source.name)
            self._arrived.notify_all()
        self.latest.put(frame)

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest frame (see LatestFrame.get); checks for a stall when none came."""
        frame = self.latest.get(timeout)
        if frame is None:
            self.check_stall()
        return frame

    def check_stall(self) -> bool:
        """True while stalled; logs and calls on_stall once when a stall is first seen."""
        with self._lock:
            newly = self._watchdog.check(self._clock.monotonic())
            stalled = self._watchdog.stalled
        if newly:
            health = self.health()
            log.error(
                "camera %s stalled: no frame for %.1f s", self.source.name, health.last_frame_age_s
            )
            if self._on_stall is not None:
                self._on_stall(health)
        return stalled

    def wait_frames(self, count: int, timeout_s: float) -> int:
        """Wait (real time, bounded) until `count` frames arrived or the source ended."""
        with self._arrived:
            self._arrived.wait_for(lambda: self._frames >= count or self._ended, timeout_s)
            return self._frames

    def health(self) -> CameraHealth:
        with self._lock:
            return CameraHealth(
                source=self.source.name,
                frames=self._frames,
                dropped=self.latest.dropped,
                errors=self._errors,
                fps=round(self._meter.fps, 2),
                stalled=self._watchdog.stalled,
                stalls=self._watchdog.stalls,
                last_frame_age_s=round(self._clock.monotonic() - self._watchdog.last_frame_at, 3),
                ended=self._ended,
            )

    def close(self) -> None:
        self._stop.set()
        self.latest.close()
        self.source.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
