"""Pins over swappable factories, as gpiozero does it: devices never import a GPIO library.

A device (keypad, LED, relay) is handed a PinFactory and talks to BCM-numbered pins
through it. `SimPinFactory` (device/hw/pins_sim.py) simulates the wiring for tests and
the demo; `RPiGPIOPinFactory` (device/hw/pins_rpi.py) drives a real Raspberry Pi through
the RPi.GPIO API (rpi-lgpio provides the same API on a Pi 5) and is imported only when
chosen, so this package imports on any machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol

from device.clock import Clock

if TYPE_CHECKING:
    from device.hw.config import HardwareConfig

Pull = Literal["up", "down", "off"]
# Called with the new level (True = high) from the factory's own thread.
EdgeCallback = Callable[[bool], None]


class PinFactory(Protocol):
    """What devices need from a GPIO backend. Levels are electrical: True = high."""

    name: str

    def setup_output(self, pin: int, level: bool) -> None:
        """Make `pin` an output already at `level` (no glitch through the other level)."""

    def setup_input(self, pin: int, pull: Pull) -> None:
        """Make `pin` an input with the given pull resistor."""

    def write(self, pin: int, level: bool) -> None: ...

    def read(self, pin: int) -> bool:
        """The level on the pin; for an output, the level it drives."""

    def watch_edges(self, pin: int, callback: EdgeCallback, bounce_ms: int) -> None:
        """Call back on every level change of an input pin."""

    def close(self) -> None:
        """Release the pins this factory set up (and only those) back to inputs."""


def pin_factory_from_config(config: HardwareConfig, clock: Clock, sim: bool = False) -> PinFactory:
    """The backend the config names, or the simulated one when `sim` is set."""
    if sim or config.backend == "sim":
        from device.hw.pins_sim import SimPinFactory

        return SimPinFactory(clock)
    from device.hw.pins_rpi import RPiGPIOPinFactory

    return RPiGPIOPinFactory()
