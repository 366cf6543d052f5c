"""The Raspberry Pi camera through Picamera2 (libcamera): a main RGB stream for face chips
and the ISP's small "lores" stream for detection, both from the same request.

picamera2 is imported in start(), so this module imports anywhere. On Raspberry Pi OS it
comes from apt (python3-picamera2); the venv is made with --system-site-packages.
Format names are libcamera's: "BGR888" is laid out R, G, B in memory, which is the RGB
array we want. The lores stream is YUV420 (the only lores format a Pi 4 ISP offers).
"""

from __future__ import annotations

import importlib
from typing import Any

import cv2
import numpy as np

from device.clock import Clock
from device.hw.camera.file_source import CameraSourceError
from device.hw.camera.frames import Frame, SourceBase, check_rgb

PICAMERA2_HINT = (
    "picamera2 is not installed: on Raspberry Pi OS run `sudo apt install python3-picamera2` "
    "and create the venv with --system-site-packages (install.sh does both), or set "
    'camera.source = "file" or "synthetic"'
)


def yuv420_to_rgb(yuv: np.ndarray, width: int) -> np.ndarray:
    """Picamera2's YUV420 array ((h * 3/2) x stride, I420 planes) to RGB, cropped to width."""
    rgb = cv2.cvtColor(np.ascontiguousarray(yuv), cv2.COLOR_YUV2RGB_I420)
    return np.ascontiguousarray(rgb[:, :width])


class Picamera2Source(SourceBase):
    def __init__(
        self,
        clock: Clock,
        width: int = 1280,
        height: int = 720,
        detect_width: int = 640,
        detect_height: int = 360,
        fps: float = 15.0,
        autofocus: bool = True,
        exposure_time_us: int | None = None,
        analogue_gain: float | None = None,
        exposure_value: float = 0.0,
        camera_num: int = 0,
    ) -> None:
        self._clock = clock
        self.size, self.detect_size = (width, height), (detect_width, detect_height)
        self.nominal_fps = fps
        self.autofocus, self.exposure_time_us = autofocus, exposure_time_us
        self.analogue_gain, self.exposure_value = analogue_gain, exposure_value
        self.camera_num = camera_num
        self.name = f"picamera2:{camera_num}"
        self.has_autofocus = False
        self._camera: Any = None

    def controls(self) -> dict[str, Any]:
        """Exposure controls from the config: auto (with EV bias) unless fixed values are set."""
        controls: dict[str, Any] = {"FrameRate": float(self.nominal_fps)}
        if self.exposure_time_us is not None:
            controls["AeEnable"] = False
            controls["ExposureTime"] = int(self.exposure_time_us)
        else:
            controls["ExposureValue"] = float(self.exposure_value)
        if self.analogue_gain is not None:
            controls["AnalogueGain"] = float(self.analogue_gain)
        return controls

    def start(self) -> None:
        if self._camera is not None:
            return
        try:
            picamera2 = importlib.import_module("picamera2")
        except ImportError:
            raise CameraSourceError(PICAMERA2_HINT) from None
        try:
            camera = picamera2.Picamera2(self.camera_num)
        except (IndexError, RuntimeError) as exc:  # no camera attached / busy
            raise CameraSourceError(
                f"camera {self.camera_num} not available: {exc} (check the ribbon cable, "
                "`rpicam-hello --list-cameras`, and that no other process holds the camera)"
            ) from None
        config = camera.create_video_configuration(
            main={"size": self.size, "format": "BGR888"},
            lores={"size": self.detect_size, "format": "YUV420"},
            controls=self.controls(),
            buffer_count=4,
        )
        camera.configure(config)
        camera.start()
        self.has_autofocus = "AfMode" in camera.camera_controls
        if self.autofocus and self.has_autofocus:  # Camera Module 3 has a focus motor
            libcamera = importlib.import_module("libcamera")
            camera.set_controls({"AfMode": libcamera.controls.AfModeEnum.Continuous})
        self._camera = camera

    def read(self) -> Frame | None:
        if self._camera is None:
            self.start()
        request = self._camera.capture_request()
        try:
            main = request.make_array("main")
            lores = request.make_array("lores")
        finally:
            request.release()  # hand the buffer back at once, or the camera runs dry
        width, height = self.size
        rgb = check_rgb(np.ascontiguousarray(main[:height, :width, :3]), self.name)
        detect = yuv420_to_rgb(lores, self.detect_size[0])
        return Frame(self._clock.monotonic(), rgb, detect)

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()
