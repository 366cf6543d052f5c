"""What every camera source yields, and the pure parts of watching one: frame rate, stalls,
and the one-slot handoff in which the newest frame wins."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """One capture: clock time, the RGB uint8 HxWx3 image, and (Picamera2) the camera's own
    small stream for detection. Unpacks as `timestamp, rgb = frame`."""

    timestamp: float
    rgb: np.ndarray
    detect: np.ndarray | None = None  # None: detect on (a resize of) rgb

    def __iter__(self) -> Iterator[object]:
        return iter((self.timestamp, self.rgb))


def check_rgb(image: object, source: str) -> np.ndarray:
    """The image as a C-contiguous HxWx3 uint8 array, or a ValueError naming the source."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(f"{source}: frame is not a uint8 array")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{source}: frame shape {image.shape} is not HxWx3")
    return np.ascontiguousarray(image)


class FrameSource(Protocol):
    name: str
    nominal_fps: float

    def start(self) -> None: ...

    def read(self) -> Frame | None:
        """The next frame, waiting for it; None when a finite source has ended."""

    def close(self) -> None: ...


class SourceBase:
    """Iteration and `with` support shared by the sources."""

    def start(self) -> None:
        raise NotImplementedError

    def read(self) -> Frame | None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self) -> SourceBase:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FpsMeter:
    """Frames per second over a sliding window of the last `window` arrival times."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def add(self, now: float) -> None:
        self._times.append(now)

    @property
    def fps(self) -> float:
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


class StallWatchdog:
    """Pure: a source that delivered nothing for `stall_after_s` is stalled until it delivers."""

    def __init__(self, stall_after_s: float, started_at: float) -> None:
        self.stall_after_s = stall_after_s
        self.last_frame_at = started_at
        self.stalled = False
        self.stalls = 0

    def frame(self, now: float) -> bool:
        """Note a frame; True if this ends a stall."""
        self.last_frame_at = now
        recovered, self.stalled = self.stalled, False
        return recovered

    def check(self, now: float) -> bool:
        """True exactly once per stall, when it is first seen."""
        if not self.stalled and now - self.last_frame_at >= self.stall_after_s:
            self.stalled = True
            self.stalls += 1
            return True
        return False


class LatestFrame:
    """A one-slot buffer: put() never blocks and replaces an unread frame (counted as
    dropped), so capture runs at camera speed whatever inference does."""

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.delivered = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest unread frame, waiting up to `timeout` s (real time); None if none came."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self.delivered += 1
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
