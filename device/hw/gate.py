"""The turnstile: the gate relay (pulse or level) and the gate's "person passed" contact.

The relay is de-energised when it is set up (start-up), when its `with` block ends or
raises, when `release()` is called, and at interpreter exit. The Pi's config.txt also sets
the pin low at boot (hardware/config.txt) to cover the seconds before this code runs.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from device.clock import Clock
from device.hw.outputs import DigitalOutput
from device.hw.patterns import OutputScheduler, sequence
from device.hw.pins import PinFactory

MIN_PULSE_MS = 100  # shorter pulses do not reliably release a turnstile's solenoid

PassageState = Literal["idle", "waiting", "passed", "timed_out"]


def _release_at_exit(ref: weakref.ref[GateRelay]) -> None:
    relay = ref()
    if relay is not None:
        with contextlib.suppress(Exception):  # the GPIO may already be closed
            relay.release()


class GateRelay(DigitalOutput):
    def __init__(
        self,
        factory: PinFactory,
        pin: int,
        scheduler: OutputScheduler,
        active_high: bool = True,
        pulse_ms: int = 300,
        mode: Literal["pulse", "level"] = "pulse",
    ) -> None:
        if pulse_ms < MIN_PULSE_MS:
            raise ValueError(f"relay pulse must be >= {MIN_PULSE_MS} ms, got {pulse_ms}")
        super().__init__(factory, pin, active_high, "relay")  # de-energised from the start
        self._scheduler = scheduler
        self.pulse_ms, self.mode = pulse_ms, mode
        atexit.register(_release_at_exit, weakref.ref(self))

    @property
    def energised(self) -> bool:
        return self.is_active

    def actuate(self) -> None:
        """Let one person through: a pulse, or (level mode) hold open until release()."""
        if self.mode == "pulse":
            self.pulse()
        else:
            self.hold_open()

    def pulse(self, ms: int | None = None) -> None:
        """Energise for `ms` (default pulse_ms); returns at once, the scheduler ends it."""
        ms = self.pulse_ms if ms is None else ms
        if ms < MIN_PULSE_MS:
            raise ValueError(f"relay pulse must be >= {MIN_PULSE_MS} ms, got {ms}")
        self._scheduler.play(self, sequence([(True, ms / 1000.0)]))

    def hold_open(self) -> None:
        self._scheduler.cancel(self)
        self.set_active(True)

    def release(self) -> None:
        """De-energise now (the safe state), cutting any pulse short."""
        self._scheduler.cancel(self)
        self.set_active(False)

    def __enter__(self) -> GateRelay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


@dataclass
class PassageWatch:
    """Pure: did the contact close between arming and the deadline?"""

    armed_at: float
    timeout_s: float
    passed_at: float | None = None

    def on_active(self, now: float) -> None:
        if self.passed_at is None and self.armed_at <= now < self.armed_at + self.timeout_s:
            self.passed_at = now

    def state(self, now: float) -> PassageState:
        if self.passed_at is not None:
            return "passed"
        return "timed_out" if now >= self.armed_at + self.timeout_s else "waiting"


class PassageSensor:
    """The gate's PASS contact. Arm it when the relay fires; a paid ride with no passage
    before the timeout can then be voided. Only a new closing edge counts, so a contact
    stuck closed never reports a passage."""

    def __init__(
        self,
        factory: PinFactory,
        pin: int,
        clock: Clock,
        timeout_s: float = 8.0,
        active_low: bool = True,
        bounce_ms: int = 20,
    ) -> None:
        self._factory, self.pin, self._clock = factory, pin, clock
        self.timeout_s, self.active_low = timeout_s, active_low
        self._watch: PassageWatch | None = None
        self._lock = threading.Lock()
        factory.setup_input(pin, "up" if active_low else "down")
        factory.watch_edges(pin, self._on_edge, bounce_ms)

    def is_active(self) -> bool:
        return self._factory.read(self.pin) != self.active_low

    def arm(self) -> None:
        with self._lock:
            self._watch = PassageWatch(self._clock.monotonic(), self.timeout_s)

    def status(self) -> PassageState:
        with self._lock:
            if self._watch is None:
                return "idle"
            return self._watch.state(self._clock.monotonic())

    def disarm(self) -> None:
        with self._lock:
            self._watch = None

    def _on_edge(self, level: bool) -> None:
        if level == self.active_low:  # the contact opened
            return
        with self._lock:
            if self._watch is not None:
                self._watch.on_active(self._clock.monotonic())
