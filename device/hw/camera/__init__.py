"""Camera sources (Picamera2, video file / frame folder, synthetic), all yielding Frames,
and the runner that captures in a thread with newest-frame handoff and stall detection."""

from __future__ import annotations

from device.clock import Clock
from device.hw.camera.file_source import CameraSourceError, FileSource
from device.hw.camera.frames import Frame, FrameSource, LatestFrame
from device.hw.camera.picamera2_source import Picamera2Source
from device.hw.camera.runner import CameraHealth, CameraRunner
from device.hw.camera.synthetic import Scene, SyntheticSource, moving_bar_scene
from device.hw.config import CameraConfig

__all__ = [
    "CameraHealth",
    "CameraRunner",
    "CameraSourceError",
    "FileSource",
    "Frame",
    "FrameSource",
    "LatestFrame",
    "Picamera2Source",
    "SyntheticSource",
    "camera_source_from_config",
]


def camera_source_from_config(
    config: CameraConfig, clock: Clock, sim: bool = False, scene: Scene | None = None
) -> FrameSource:
    """The configured source; `sim` swaps a Picamera2 for a synthetic one (no camera here).

    `scene` draws synthetic frames (the demo passes its scenes); default a moving bar."""
    if config.source == "file" and config.path is not None:
        return FileSource(config.path, clock, paced=config.file_paced, loop=config.file_loop)
    if config.source == "picamera2" and not sim:
        return Picamera2Source(
            clock,
            config.width,
            config.height,
            config.detect_width,
            config.detect_height,
            config.fps,
            autofocus=config.autofocus,
            exposure_time_us=config.exposure_time_us,
            analogue_gain=config.analogue_gain,
            exposure_value=config.exposure_value,
        )
    scene = scene or moving_bar_scene(config.detect_width, config.detect_height)
    return SyntheticSource(scene, clock, config.fps)
