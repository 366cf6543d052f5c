"""Frames drawn by a function of time, paced at the frame rate on the injected clock (demo)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from device.clock import Clock
from device.hw.camera.frames import Frame, SourceBase, check_rgb

Scene = Callable[[float], np.ndarray]  # seconds since start -> RGB uint8 HxWx3


def moving_bar_scene(width: int = 320, height: int = 240) -> Scene:
    """A grey frame with a bright bar sweeping across once a second (self-test, demo idle)."""

    def render(t: float) -> np.ndarray:
        image = np.full((height, width, 3), 60, dtype=np.uint8)
        x = int((t % 1.0) * width)
        image[:, max(0, x - 8) : x + 8] = 220
        return image

    return render


class SyntheticSource(SourceBase):
    def __init__(
        self,
        scene: Scene,
        clock: Clock,
        fps: float = 15.0,
        max_frames: int | None = None,
        name: str = "synthetic",
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self._scene, self._clock = scene, clock
        self.nominal_fps, self.max_frames, self.name = fps, max_frames, name
        self._index = 0
        self._started_at: float | None = None

    def start(self) -> None:
        self._started_at = self._clock.monotonic()
        self._index = 0

    def read(self) -> Frame | None:
        if self._started_at is None:
            self.start()
        assert self._started_at is not None
        if self.max_frames is not None and self._index >= self.max_frames:
            return None
        elapsed = self._index / self.nominal_fps
        due = self._started_at + elapsed
        self._clock.sleep(due - self._clock.monotonic())
        self._index += 1
        return Frame(due, check_rgb(self._scene(elapsed), self.name))

    def close(self) -> None:
        self._started_at = None
