"""Camera sources: frame folders and video files, synthetic scenes, Picamera2 against a fake
module, and the capture runner's newest-frame handoff, frame rate and stall detection."""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest

from device.clock import FakeClock, SystemClock
from device.hw.camera import (
    CameraRunner,
    CameraSourceError,
    FileSource,
    Frame,
    LatestFrame,
    Picamera2Source,
    SyntheticSource,
    camera_source_from_config,
)
from device.hw.camera.frames import FpsMeter, StallWatchdog, check_rgb
from device.hw.camera.picamera2_source import yuv420_to_rgb
from device.hw.config import CameraConfig


def _write_frames(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = np.full((24, 32, 3), index * 10, dtype=np.uint8)
        cv2.imwrite(str(folder / f"frame{index}.png"), image)


def test_folder_is_read_in_natural_order_with_timestamps_from_fps_file(tmp_path: Path) -> None:
    _write_frames(tmp_path, 12)
    (tmp_path / "fps.txt").write_text("10\n")
    clock = FakeClock()
    source = FileSource(tmp_path, clock, paced=False)
    frames = list(source)
    assert [int(frame.rgb[0, 0, 0]) for frame in frames] == [i * 10 for i in range(12)]
    assert source.nominal_fps == 10.0
    start = frames[0].timestamp
    assert [round(f.timestamp - start, 6) for f in frames[:3]] == [0.0, 0.1, 0.2]


def test_paced_folder_waits_for_each_frame_on_the_injected_clock(tmp_path: Path) -> None:
    _write_frames(tmp_path, 3)
    clock = FakeClock()
    start = clock.monotonic()
    frames = list(FileSource(tmp_path, clock, paced=True, fps=5.0))
    assert len(frames) == 3
    assert clock.monotonic() == pytest.approx(start + 0.4)


def test_unreadable_image_in_a_folder_is_skipped_and_counted(tmp_path: Path) -> None:
    _write_frames(tmp_path, 2)
    (tmp_path / "frame1.png").write_bytes(b"not a png")
    source = FileSource(tmp_path, FakeClock(), paced=False)
    assert len(list(source)) == 1
    assert source.skipped == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "no such video file or frame folder"),
        (lambda p: p.mkdir(), "no image files"),
        (lambda p: (_write_frames(p, 1), (p / "fps.txt").write_text("fast")), "not a number"),
        (lambda p: (_write_frames(p, 1), (p / "fps.txt").write_text("1000")), "outside 0..240"),
        (lambda p: p.write_bytes(b"\x00" * 100), "cannot open this video"),
    ],
)
def test_bad_sources_are_clear_errors(tmp_path: Path, setup: Any, message: str) -> None:
    path = tmp_path / "clip"
    setup(path)
    with pytest.raises(CameraSourceError, match=message):
        FileSource(path, FakeClock())


def test_video_file_frames_are_rgb_and_loop_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (32, 24))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG AVI")
    for _ in range(4):
        writer.write(
            np.dstack([np.zeros((24, 32), np.uint8)] * 2 + [np.full((24, 32), 200, np.uint8)])
        )
    writer.release()
    frames = list(FileSource(path, FakeClock(), paced=False))
    assert len(frames) == 4 and frames[0].rgb.shape == (24, 32, 3)
    assert frames[0].rgb[..., 0].mean() > 150  # BGR red channel written, RGB red read
    looping = FileSource(path, FakeClock(), paced=False, loop=True)
    assert sum(1 for _, frame in zip(range(10), looping, strict=False)) == 10


def test_synthetic_source_paces_on_the_clock_and_ends_after_max_frames() -> None:
    clock = FakeClock()
    start = clock.monotonic()
    source = SyntheticSource(lambda t: np.full((8, 8, 3), int(t * 10), np.uint8), clock, 10.0, 5)
    frames = list(source)
    assert len(frames) == 5
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [0, 1, 2, 3, 4]
    assert clock.monotonic() == pytest.approx(start + 0.4)
    with pytest.raises(ValueError):
        SyntheticSource(lambda t: np.zeros((8, 8, 3), np.uint8), clock, 0.0)


def test_check_rgb_refuses_what_is_not_an_rgb_image() -> None:
    with pytest.raises(ValueError, match="not a uint8"):
        check_rgb(np.zeros((4, 4, 3), np.float32), "cam")
    with pytest.raises(ValueError, match="not HxWx3"):
        check_rgb(np.zeros((4, 4), np.uint8), "cam")
    assert check_rgb(np.zeros((4, 4, 3), np.uint8)[:, ::-1], "cam").flags.c_contiguous


def test_latest_frame_keeps_the_newest_and_counts_the_dropped() -> None:
    slot = LatestFrame()
    for index in range(3):
        slot.put(Frame(float(index), np.zeros((2, 2, 3), np.uint8)))
    frame = slot.get(timeout=0)
    assert frame is not None and frame.timestamp == 2.0
    assert slot.dropped == 2 and slot.delivered == 1
    assert slot.get(timeout=0.01) is None


def test_fps_meter_and_stall_watchdog_are_pure() -> None:
    meter = FpsMeter(window=5)
    for index in range(5):
        meter.add(index / 15)
    assert meter.fps == pytest.approx(15.0)
    watchdog = StallWatchdog(2.0, started_at=0.0)
    assert not watchdog.check(1.9)
    assert watchdog.check(2.0) and not watchdog.check(3.0)  # reported once per stall
    assert watchdog.frame(3.5) and not watchdog.stalled
    assert watchdog.stalls == 1


class _StallingSource:
    """Delivers `count` frames, then blocks as a camera with a pulled ribbon cable does."""

    name, nominal_fps = "stalling", 15.0

    def __init__(self, clock: FakeClock, count: int) -> None:
        self._clock, self._left = clock, count
        self.release = threading.Event()

    def start(self) -> None: ...

    def read(self) -> Frame | None:
        if self._left == 0:
            self.release.wait(5.0)
            return None
        self._left -= 1
        return Frame(self._clock.monotonic(), np.zeros((4, 4, 3), np.uint8))

    def close(self) -> None:
        self.release.set()


def test_runner_reports_a_camera_that_stops_delivering() -> None:
    clock = FakeClock()
    stalls: list[Any] = []
    source = _StallingSource(clock, 3)
    runner = CameraRunner(source, clock, stall_after_s=2.0, on_stall=stalls.append)
    runner.start()
    try:
        assert runner.wait_frames(3, timeout_s=5.0) == 3
        assert not runner.check_stall()
        clock.advance(2.5)
        assert runner.get(timeout=0.05) is not None  # the last frame is still handed over
        assert runner.get(timeout=0.05) is None
        assert runner.check_stall()
        health = runner.health()
        assert health.stalled and health.stalls == 1 and health.frames == 3
        assert len(stalls) == 1 and stalls[0].last_frame_age_s >= 2.0
    finally:
        runner.close()


def test_runner_counts_read_errors_and_keeps_capturing() -> None:
    class Flaky:
        name, nominal_fps = "flaky", 15.0

        def __init__(self) -> None:
            self.calls = 0

        def start(self) -> None: ...

        def read(self) -> Frame | None:
            self.calls += 1
            if self.calls == 1:
                raise OSError("dma timeout")
            if self.calls > 3:
                return None
            return Frame(0.0, np.zeros((4, 4, 3), np.uint8))

        def close(self) -> None: ...

    runner = CameraRunner(Flaky(), SystemClock())
    runner.start()
    try:
        assert runner.wait_frames(2, timeout_s=5.0) == 2
        runner.wait_frames(99, timeout_s=2.0)  # until the source ends
        health = runner.health()
        assert health.errors == 1 and health.ended
    finally:
        runner.close()


class _FakeRequest:
    def __init__(self, camera: _FakePicamera2) -> None:
        self._camera = camera

    def make_array(self, name: str) -> np.ndarray:
        if name == "main":
            return np.full((720, 1280 + 64, 3), 7, np.uint8)  # padded stride, as libcamera does
        height, width = self._camera.lores_size[1], self._camera.lores_size[0]
        return np.full((height * 3 // 2, width), 128, np.uint8)

    def release(self) -> None:
        self._camera.released += 1


class _FakePicamera2:
    instances: ClassVar[list[_FakePicamera2]] = []

    def __init__(self, camera_num: int = 0) -> None:
        self.camera_controls = {"AfMode": (0, 2, 0)}
        self.set: list[dict[str, Any]] = []
        self.released = 0
        self.started = self.closed = False
        self.lores_size = (640, 360)
        _FakePicamera2.instances.append(self)

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        self.lores_size = kwargs["lores"]["size"]
        return kwargs

    def configure(self, config: dict[str, Any]) -> None:
        self.config = config

    def start(self) -> None:
        self.started = True

    def set_controls(self, controls: dict[str, Any]) -> None:
        self.set.append(controls)

    def capture_request(self) -> _FakeRequest:
        return _FakeRequest(self)

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[_FakePicamera2]:
    module = types.ModuleType("picamera2")
    module.Picamera2 = _FakePicamera2  # type: ignore[attr-defined]
    libcamera = types.ModuleType("libcamera")
    libcamera.controls = types.SimpleNamespace(  # type: ignore[attr-defined]
        AfModeEnum=types.SimpleNamespace(Continuous=2)
    )
    monkeypatch.setitem(sys.modules, "picamera2", module)
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)
    _FakePicamera2.instances.clear()
    return _FakePicamera2


def test_picamera2_source_configures_two_streams_autofocus_and_exposure(
    fake_picamera2: type[_FakePicamera2],
) -> None:
    source = Picamera2Source(FakeClock(), exposure_time_us=8000, analogue_gain=2.0)
    frame = source.read()
    camera = fake_picamera2.instances[0]
    assert camera.config["main"] == {"size": (1280, 720), "format": "BGR888"}
    assert camera.config["lores"] == {"size": (640, 360), "format": "YUV420"}
    assert camera.config["controls"]["AeEnable"] is False
    assert camera.config["controls"]["ExposureTime"] == 8000
    assert camera.set == [{"AfMode": 2}]
    assert frame is not None and frame.rgb.shape == (720, 1280, 3)
    assert frame.detect is not None and frame.detect.shape == (360, 640, 3)
    assert camera.released == 1  # the buffer went back to the camera
    source.close()
    assert camera.closed and not camera.started


def test_picamera2_missing_is_a_clear_error_with_the_apt_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CameraSourceError, match="python3-picamera2"):
        Picamera2Source(FakeClock()).start()


def test_yuv420_grey_converts_to_grey_rgb() -> None:
    rgb = yuv420_to_rgb(np.full((36 * 3 // 2, 64), 128, np.uint8), 60)
    assert rgb.shape == (36, 60, 3)
    assert np.all(np.abs(rgb.astype(int) - 128) <= 2)


def test_config_picks_the_source(tmp_path: Path) -> None:
    clock = FakeClock()
    _write_frames(tmp_path, 1)
    assert isinstance(camera_source_from_config(CameraConfig(), clock), SyntheticSource)
    picam = CameraConfig(source="picamera2")
    assert isinstance(camera_source_from_config(picam, clock), Picamera2Source)
    assert isinstance(camera_source_from_config(picam, clock, sim=True), SyntheticSource)
    folder = CameraConfig(source="file", path=tmp_path)
    assert isinstance(camera_source_from_config(folder, clock), FileSource)
