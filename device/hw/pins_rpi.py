"""The real GPIO backend: the RPi.GPIO API (RPi.GPIO on a Pi 4, rpi-lgpio on a Pi 5).

The library is imported when a factory is made, never at package import, so the rest of
blinkpay runs where it is absent. BCM numbering throughout; cleanup touches only the pins
this factory set up, so another process's or library's pins are left alone.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import Any

from device.errors import BlinkpayError
from device.hw.pins import EdgeCallback, Pull

INSTALL_HINT = (
    "install it with `pip install 'blinkpay[pi]'` (Pi 4: RPi.GPIO) or "
    "`pip install 'blinkpay[pi5]'` (Pi 5: rpi-lgpio), or set hardware.backend = \"sim\""
)


class GpioUnavailable(BlinkpayError):
    """The GPIO library is missing or refused to open the GPIO device."""


def _import_gpio() -> ModuleType:
    try:
        return importlib.import_module("RPi.GPIO")
    except ImportError:
        raise GpioUnavailable(f"RPi.GPIO is not installed: {INSTALL_HINT}") from None
    except RuntimeError as exc:  # RPi.GPIO raises this off a Pi or without /dev/gpiomem access
        raise GpioUnavailable(
            f"RPi.GPIO could not open the GPIO: {exc} (is the service user in the `gpio` "
            "group? see hardware/99-blinkpay-gpio.rules)"
        ) from None


class RPiGPIOPinFactory:
    name = "rpi-gpio"

    def __init__(self, gpio: ModuleType | Any | None = None) -> None:
        """`gpio` is the RPi.GPIO module; tests pass a recording fake instead."""
        self._gpio = gpio if gpio is not None else _import_gpio()
        mode = self._gpio.getmode()
        if mode not in (None, self._gpio.BCM):
            raise GpioUnavailable("RPi.GPIO is already in BOARD mode in this process; need BCM")
        self._gpio.setmode(self._gpio.BCM)
        self._pulls = {
            "up": self._gpio.PUD_UP,
            "down": self._gpio.PUD_DOWN,
            "off": self._gpio.PUD_OFF,
        }
        self._own: set[int] = set()
        self._watched: set[int] = set()
        self._lock = threading.Lock()
        version = getattr(self._gpio, "VERSION", "?")
        self.name = f"rpi-gpio {version}"

    def setup_output(self, pin: int, level: bool) -> None:
        initial = self._gpio.HIGH if level else self._gpio.LOW
        self._gpio.setup(pin, self._gpio.OUT, initial=initial)
        with self._lock:
            self._own.add(pin)

    def setup_input(self, pin: int, pull: Pull) -> None:
        self._gpio.setup(pin, self._gpio.IN, pull_up_down=self._pulls[pull])
        with self._lock:
            self._own.add(pin)

    def write(self, pin: int, level: bool) -> None:
        self._gpio.output(pin, self._gpio.HIGH if level else self._gpio.LOW)

    def read(self, pin: int) -> bool:
        return bool(self._gpio.input(pin))

    def watch_edges(self, pin: int, callback: EdgeCallback, bounce_ms: int) -> None:
        def on_edge(channel: int) -> None:
            callback(bool(self._gpio.input(channel)))

        self._gpio.add_event_detect(pin, self._gpio.BOTH, callback=on_edge, bouncetime=bounce_ms)
        with self._lock:
            self._watched.add(pin)

    def close(self) -> None:
        with self._lock:
            watched, own = sorted(self._watched), sorted(self._own)
            self._watched.clear()
            self._own.clear()
        for pin in watched:
            self._gpio.remove_event_detect(pin)
        if own:
            self._gpio.cleanup(own)
