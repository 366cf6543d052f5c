"""LEDs and the buzzer: switched outputs that play patterns through the OutputScheduler."""

from __future__ import annotations

import threading

from device.hw.patterns import OutputScheduler, Pattern, blink, blink_hz, sequence, solid
from device.hw.pins import PinFactory


class DigitalOutput:
    """One output pin, driven in terms of active/inactive; inactive from the moment it is set up."""

    def __init__(
        self, factory: PinFactory, pin: int, active_high: bool = True, name: str = ""
    ) -> None:
        self._factory, self.pin, self.active_high = factory, pin, active_high
        self.name = name or f"BCM{pin}"
        self._lock = threading.Lock()
        self._active = False
        factory.setup_output(pin, self._level(False))

    def _level(self, active: bool) -> bool:
        return active == self.active_high

    @property
    def is_active(self) -> bool:
        return self._active

    def set_active(self, active: bool) -> None:
        with self._lock:
            if active != self._active:
                self._factory.write(self.pin, self._level(active))
                self._active = active

    def read_back(self) -> bool:
        """Active according to the pin itself (not our record of it)."""
        return self._factory.read(self.pin) == self.active_high

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, BCM {self.pin}, active={self._active})"


class PatternedOutput(DigitalOutput):
    def __init__(
        self,
        factory: PinFactory,
        pin: int,
        scheduler: OutputScheduler,
        active_high: bool = True,
        name: str = "",
    ) -> None:
        super().__init__(factory, pin, active_high, name)
        self._scheduler = scheduler

    def on(self) -> None:
        self._scheduler.cancel(self)
        self.set_active(True)

    def off(self) -> None:
        self._scheduler.cancel(self)
        self.set_active(False)

    def play(self, pattern: Pattern) -> None:
        self._scheduler.play(self, pattern)

    def blink(self, on_s: float = 0.5, off_s: float = 0.5, count: int | None = None) -> None:
        self.play(blink(on_s, off_s, count))


class Led(PatternedOutput):
    pass


class Buzzer(PatternedOutput):
    """An active piezo buzzer (it sounds while the pin is active)."""

    CLICK = sequence([(True, 0.015)])
    OK = sequence([(True, 0.08), (False, 0.06), (True, 0.08)])
    ERROR = sequence([(True, 0.4)])
    ALARM = blink(0.2, 0.2, count=5)

    def click(self) -> None:
        self.play(self.CLICK)

    def ok(self) -> None:
        self.play(self.OK)

    def error(self) -> None:
        self.play(self.ERROR)


# What the four LEDs show for each state of the terminal: (green, amber, red, prompt).
# The prompt light is the "blink to pay" light beside the camera.
INDICATIONS: dict[str, tuple[Pattern, Pattern, Pattern, Pattern]] = {
    "off": (solid(False), solid(False), solid(False), solid(False)),
    "idle": (
        sequence([(True, 0.1), (False, 2.9)], repeat=None),
        solid(False),
        solid(False),
        solid(False),
    ),
    "look": (solid(False), solid(False), solid(False), solid(True)),
    "blink_prompt": (solid(False), solid(False), solid(False), blink_hz(2.0)),
    "working": (solid(False), blink_hz(4.0), solid(False), solid(False)),
    "pin": (solid(False), solid(True), solid(False), solid(False)),
    "approved": (sequence([(True, 2.0)]), solid(False), solid(False), solid(False)),
    "declined": (solid(False), solid(False), sequence([(True, 2.0)]), solid(False)),
    "offline": (
        sequence([(True, 0.1), (False, 2.9)], repeat=None),
        blink(0.5, 2.5),
        solid(False),
        solid(False),
    ),
    "fault": (solid(False), solid(False), blink_hz(1.0), solid(False)),
}


class LedBoard:
    def __init__(
        self,
        factory: PinFactory,
        scheduler: OutputScheduler,
        green: int,
        amber: int,
        red: int,
        prompt: int,
        active_high: bool = True,
    ) -> None:
        def led(pin: int, name: str) -> Led:
            return Led(factory, pin, scheduler, active_high, name)

        self.green, self.amber = led(green, "green"), led(amber, "amber")
        self.red, self.prompt = led(red, "red"), led(prompt, "prompt")
        self.indication = "off"

    @property
    def leds(self) -> dict[str, Led]:
        return {"green": self.green, "amber": self.amber, "red": self.red, "prompt": self.prompt}

    def show(self, indication: str) -> None:
        """Put all four LEDs in the named state (see INDICATIONS)."""
        patterns = INDICATIONS.get(indication)
        if patterns is None:
            raise ValueError(f"unknown indication {indication!r}; known: {', '.join(INDICATIONS)}")
        for led, pattern in zip(self.leds.values(), patterns, strict=True):
            led.play(pattern)
        self.indication = indication

    def off(self) -> None:
        for led in self.leds.values():
            led.off()
        self.indication = "off"
