"""Fixtures for the hardware tests: a FakeClock, simulated hardware, and a fake RPi.GPIO."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from device.clock import FakeClock
from device.hw.config import HardwareConfig
from device.hw.devices import Hardware, open_hardware


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hardware(clock: FakeClock) -> Iterator[Hardware]:
    """Every device on simulated pins; no threads: tests call poll()/tick() themselves."""
    with open_hardware(HardwareConfig(), clock, sim=True) as hw:
        yield hw


class FakeGPIO(types.ModuleType):
    """Just enough of the RPi.GPIO module to record what a backend asks of it."""

    BCM, BOARD = 11, 10
    IN, OUT = 1, 0
    HIGH, LOW = 1, 0
    PUD_OFF, PUD_DOWN, PUD_UP = 20, 21, 22
    RISING, FALLING, BOTH = 31, 32, 33
    VERSION = "0.7.1-fake"

    def __init__(self) -> None:
        super().__init__("RPi.GPIO")
        self.calls: list[tuple[Any, ...]] = []
        self.mode: int | None = None
        self.levels: dict[int, int] = {}
        self.directions: dict[int, int] = {}

    def getmode(self) -> int | None:
        return self.mode

    def setmode(self, mode: int) -> None:
        self.calls.append(("setmode", mode))
        self.mode = mode

    def setup(self, pin: int, direction: int, pull_up_down: int = 20, initial: int = -1) -> None:
        if self.mode is None:
            raise RuntimeError("Please set pin numbering mode")
        self.calls.append(("setup", pin, direction, pull_up_down, initial))
        self.directions[pin] = direction
        if direction == self.OUT:
            self.levels[pin] = initial if initial != -1 else self.LOW
        else:  # an idle input reads its pull
            self.levels[pin] = self.LOW if pull_up_down == self.PUD_DOWN else self.HIGH

    def output(self, pin: int, level: int) -> None:
        if self.directions.get(pin) != self.OUT:
            raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
        self.calls.append(("output", pin, level))
        self.levels[pin] = level

    def input(self, pin: int) -> int:
        if pin not in self.directions:
            raise RuntimeError("You must setup() the GPIO channel first")
        return self.levels[pin]

    def add_event_detect(
        self, pin: int, edge: int, callback: Any = None, bouncetime: int = 0
    ) -> None:
        self.calls.append(("add_event_detect", pin, edge, bouncetime))

    def remove_event_detect(self, pin: int) -> None:
        self.calls.append(("remove_event_detect", pin))

    def cleanup(self, channels: Any = None) -> None:
        self.calls.append(("cleanup", channels))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]


@pytest.fixture
def fake_gpio(monkeypatch: pytest.MonkeyPatch) -> FakeGPIO:
    """A fake RPi.GPIO in sys.modules, so `import RPi.GPIO` finds it."""
    gpio = FakeGPIO()
    package = types.ModuleType("RPi")
    package.GPIO = gpio  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "RPi", package)
    monkeypatch.setitem(sys.modules, "RPi.GPIO", gpio)
    return gpio
