"""Hardware settings: which pin factory, the pin map (BCM numbers), timings, camera."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PinMap(_Section):
    keypad_rows: list[int] = Field(default_factory=lambda: [5, 6, 13, 19])
    keypad_cols: list[int] = Field(default_factory=lambda: [12, 16, 20])
    led_green: int = 17
    led_amber: int = 27
    led_red: int = 22
    led_prompt: int = 23
    buzzer: int = 18
    relay: int = 24
    passage: int | None = 25


class CameraConfig(_Section):
    source: Literal["picamera2", "file", "synthetic"] = "synthetic"
    path: Path | None = None  # video file or frame folder for source = "file"
    width: int = Field(default=1280, ge=64, le=4608)
    height: int = Field(default=720, ge=64, le=2592)
    detect_width: int = Field(default=640, ge=64, le=2304)
    detect_height: int = Field(default=360, ge=64, le=1296)
    fps: float = Field(default=15.0, gt=0.0, le=120.0)
    stall_after_s: float = Field(default=2.0, gt=0.0)


class HardwareConfig(_Section):
    backend: Literal["sim", "rpi"] = "sim"
    pins: PinMap = Field(default_factory=PinMap)
    relay_active_high: bool = True
    relay_pulse_ms: int = Field(default=300, ge=100, le=10_000)
    relay_mode: Literal["pulse", "level"] = "pulse"
    passage_timeout_s: float = Field(default=8.0, gt=0.0, le=120.0)
    keypad_debounce_ms: int = Field(default=20, ge=5, le=200)
    camera: CameraConfig = Field(default_factory=CameraConfig)
