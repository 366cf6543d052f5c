"""Hardware settings: which pin factory, the pin map (BCM numbers), timings, camera."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# BCM 0 and 1 are the HAT ID EEPROM bus; 2..27 are the user GPIOs on the 40-pin header.
BCM_USER_PINS = range(2, 28)


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
    passage: int | None = 25  # None (`passage = false` in TOML) = the gate has no PASS contact
    # the illumination challenge's LED ring; `challenge_light = false`: no ring, no challenge
    challenge_light: int | None = 26

    @field_validator("passage", "challenge_light", mode="before")
    @classmethod
    def _false_means_none(cls, value: object) -> object:
        # TOML has no null: `passage = false` says the gate has no "person passed" contact,
        # `challenge_light = false` that the terminal has no challenge light.
        return None if value is False else value

    def named_pins(self) -> dict[str, int]:
        """Every pin in use, by role (keypad_row0.., led_green, ..)."""
        named = {f"keypad_row{i}": pin for i, pin in enumerate(self.keypad_rows)}
        named.update({f"keypad_col{i}": pin for i, pin in enumerate(self.keypad_cols)})
        for role in ("led_green", "led_amber", "led_red", "led_prompt", "buzzer", "relay"):
            named[role] = getattr(self, role)
        if self.passage is not None:
            named["passage"] = self.passage
        if self.challenge_light is not None:
            named["challenge_light"] = self.challenge_light
        return named

    @model_validator(mode="after")
    def _valid_wiring(self) -> PinMap:
        if len(self.keypad_rows) != 4 or len(self.keypad_cols) != 3:
            raise ValueError("a 4x3 keypad needs 4 keypad_rows and 3 keypad_cols")
        by_pin: dict[int, list[str]] = {}
        for role, pin in self.named_pins().items():
            if pin not in BCM_USER_PINS:
                raise ValueError(f"{role} = {pin}: not a user GPIO (BCM 2..27)")
            by_pin.setdefault(pin, []).append(role)
        shared = [
            f"BCM {pin}: {', '.join(roles)}" for pin, roles in by_pin.items() if len(roles) > 1
        ]
        if shared:
            raise ValueError("pins used twice: " + "; ".join(shared))
        return self


class CameraConfig(_Section):
    source: Literal["picamera2", "file", "synthetic"] = "synthetic"
    path: Path | None = None  # video file or frame folder for source = "file"
    width: int = Field(default=1280, ge=64, le=4608)
    height: int = Field(default=720, ge=64, le=2592)
    detect_width: int = Field(default=640, ge=64, le=2304)
    detect_height: int = Field(default=360, ge=64, le=1296)
    fps: float = Field(default=15.0, gt=0.0, le=120.0)
    stall_after_s: float = Field(default=2.0, gt=0.0)
    # Picamera2 only: continuous autofocus where the module has it (Camera Module 3).
    autofocus: bool = True
    exposure_time_us: int | None = Field(default=None, ge=100, le=1_000_000)  # None = auto
    analogue_gain: float | None = Field(default=None, ge=1.0, le=16.0)  # None = auto
    exposure_value: float = Field(default=0.0, ge=-8.0, le=8.0)  # EV compensation in auto mode
    # file source: pace frames at their frame rate (demo) or deliver as fast as read (eval)
    file_paced: bool = True
    file_loop: bool = False

    @model_validator(mode="after")
    def _detect_fits(self) -> CameraConfig:
        if self.detect_width > self.width or self.detect_height > self.height:
            raise ValueError("detect_width x detect_height must not exceed width x height")
        if self.source == "file" and self.path is None:
            raise ValueError('source = "file" needs path (a video file or a frame folder)')
        return self


class HardwareConfig(_Section):
    backend: Literal["sim", "rpi"] = "sim"
    pins: PinMap = Field(default_factory=PinMap)
    relay_active_high: bool = True
    relay_pulse_ms: int = Field(default=300, ge=100, le=10_000)
    relay_mode: Literal["pulse", "level"] = "pulse"
    passage_timeout_s: float = Field(default=8.0, gt=0.0, le=120.0)
    keypad_debounce_ms: int = Field(default=20, ge=5, le=200)
    keypad_scan_interval_ms: int = Field(default=4, ge=1, le=50)
    leds_active_high: bool = True
    buzzer_active_high: bool = True
    challenge_light_active_high: bool = True
    passage_active_low: bool = True  # the PASS contact closes to GND, input pulled up
    camera: CameraConfig = Field(default_factory=CameraConfig)
