"""Frames from a video file or a folder of images (OpenCV), for the demo, eval and tests.

A folder is read in natural name order (frame2 before frame10); an optional fps.txt in it
gives the frame rate, else 15 fps. Timestamps are start + index / fps, so a clip always
has the same timing however fast it is processed; `paced` also waits for each frame's
time on the injected clock, as a live camera would deliver it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cv2
import numpy as np

from device.clock import Clock
from device.errors import BlinkpayError
from device.hw.camera.frames import Frame, SourceBase, check_rgb

log = logging.getLogger(__name__)

DEFAULT_FPS = 15.0
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


class CameraSourceError(BlinkpayError):
    """A camera source cannot be opened as configured."""


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _read_fps_file(folder: Path) -> float:
    path = folder / "fps.txt"
    if not path.exists():
        return DEFAULT_FPS
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    try:
        fps = float(text)
    except ValueError:
        raise CameraSourceError(f"{path}: not a number: {text[:40]!r}") from None
    if not 0.0 < fps <= 240.0:
        raise CameraSourceError(f"{path}: fps {fps} outside 0..240")
    return fps


class FileSource(SourceBase):
    def __init__(
        self,
        path: Path,
        clock: Clock,
        paced: bool = True,
        loop: bool = False,
        fps: float | None = None,
    ) -> None:
        self.path, self._clock, self.paced, self.loop = Path(path), clock, paced, loop
        self.name = f"file:{self.path.name}"
        self._images: list[Path] = []
        self._capture: cv2.VideoCapture | None = None
        self.skipped = 0  # unreadable images, logged and counted
        if self.path.is_dir():
            self._images = sorted(
                (p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                key=_natural_key,
            )
            if not self._images:
                raise CameraSourceError(f"{self.path}: no image files in the folder")
            self.nominal_fps = fps or _read_fps_file(self.path)
        elif self.path.is_file():
            probe = cv2.VideoCapture(str(self.path))
            if not probe.isOpened():
                raise CameraSourceError(f"{self.path}: OpenCV cannot open this video")
            file_fps = float(probe.get(cv2.CAP_PROP_FPS) or 0.0)
            probe.release()
            self.nominal_fps = fps or (file_fps if 0.0 < file_fps <= 240.0 else DEFAULT_FPS)
        else:
            raise CameraSourceError(f"{self.path}: no such video file or frame folder")
        self._index = 0  # frames delivered, for timestamps
        self._position = 0  # next image in the folder
        self._started_at: float | None = None

    def start(self) -> None:
        self._started_at = self._clock.monotonic()
        self._index = self._position = 0
        if not self._images:
            self._capture = cv2.VideoCapture(str(self.path))

    def read(self) -> Frame | None:
        if self._started_at is None:
            self.start()
        assert self._started_at is not None
        rgb = self._next_image()
        if rgb is None:
            return None
        due = self._started_at + self._index / self.nominal_fps
        if self.paced:
            self._clock.sleep(due - self._clock.monotonic())
        self._index += 1
        return Frame(due, rgb)

    def _next_image(self) -> np.ndarray | None:
        if self._images:
            return self._next_from_folder()
        assert self._capture is not None
        ok, bgr = self._capture.read()
        if not ok and self.loop and self._index > 0:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._capture.read()
        if not ok:
            return None
        return check_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.name)

    def _next_from_folder(self) -> np.ndarray | None:
        tried = 0
        while tried < len(self._images):
            if self._position >= len(self._images):
                if not self.loop:
                    return None
                self._position = 0
            path = self._images[self._position]
            self._position += 1
            tried += 1
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                self.skipped += 1
                log.warning("frame folder %s: unreadable image %s skipped", self.path, path.name)
                continue
            return check_rgb(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self.name)
        return None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._started_at = None
