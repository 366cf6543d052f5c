"""On/off patterns (solid, blink, sequences) and the scheduler that plays them on outputs.

A Pattern is pure: given the time since it started it says the level and how long that
level holds. The OutputScheduler reads the injected clock and applies the levels; in the
terminal a thread calls tick() when the next change is due, in tests the test calls
tick() after moving a FakeClock, so every timing is checked without sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from device.clock import Clock

# Float sums of step lengths land a hair short of a boundary; treat that as on it.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Pattern:
    steps: tuple[tuple[bool, float], ...]  # (active, seconds)
    repeat: int | None = 1  # times through the steps; None = until replaced
    end_active: bool = False  # level after the last repeat

    def __post_init__(self) -> None:
        if any(seconds <= 0 for _, seconds in self.steps):
            raise ValueError("every pattern step needs a positive duration")
        if self.repeat is not None and self.repeat < 1:
            raise ValueError("repeat must be >= 1 or None")

    @property
    def period(self) -> float:
        return sum(seconds for _, seconds in self.steps)

    @property
    def duration(self) -> float | None:
        """Seconds until the end level, None for a pattern that repeats forever."""
        return None if self.repeat is None else self.period * self.repeat

    def level_at(self, elapsed: float) -> tuple[bool, float | None]:
        """(active?, seconds that level still holds or None if it holds for good)."""
        elapsed += _EPSILON
        if not self.steps or (self.duration is not None and elapsed >= self.duration):
            return self.end_active, None
        into = elapsed % self.period
        for active, seconds in self.steps:
            if into < seconds:
                return active, seconds - into
            into -= seconds
        return self.steps[-1][0], _EPSILON  # unreachable but for float rounding


def solid(active: bool) -> Pattern:
    return Pattern((), end_active=active)


def blink(on_s: float, off_s: float, count: int | None = None) -> Pattern:
    return Pattern(((True, on_s), (False, off_s)), repeat=count)


def blink_hz(rate_hz: float, count: int | None = None, duty: float = 0.5) -> Pattern:
    period = 1.0 / rate_hz
    return blink(period * duty, period * (1.0 - duty), count)


def sequence(
    steps: Sequence[tuple[bool, float]], repeat: int | None = 1, end_active: bool = False
) -> Pattern:
    return Pattern(tuple(steps), repeat, end_active)


class Switchable(Protocol):
    def set_active(self, active: bool) -> None: ...


@dataclass
class _Playing:
    pattern: Pattern
    started: float


class OutputScheduler:
    """Plays one pattern per output; a new pattern on an output replaces the old one."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._playing: dict[Switchable, _Playing] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def play(self, output: Switchable, pattern: Pattern) -> None:
        with self._lock:
            self._playing[output] = _Playing(pattern, self._clock.monotonic())
            self.tick()
        self._wake.set()

    def cancel(self, output: Switchable) -> None:
        """Stop the output's pattern where it is (the caller then sets the level it wants)."""
        with self._lock:
            self._playing.pop(output, None)

    def is_playing(self, output: Switchable) -> bool:
        with self._lock:
            return output in self._playing

    def tick(self) -> float | None:
        """Apply every pattern's level now; return when the next change is due (or None)."""
        with self._lock:
            now = self._clock.monotonic()
            next_due: float | None = None
            for output, playing in list(self._playing.items()):
                active, holds_for = playing.pattern.level_at(now - playing.started)
                output.set_active(active)
                if holds_for is None:
                    del self._playing[output]
                else:
                    due = now + holds_for
                    next_due = due if next_due is None else min(next_due, due)
            return next_due

    def start(self) -> None:
        """Play patterns from a thread (the terminal); tests call tick() themselves."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                self._wake.clear()  # before tick(), so a play() from now on wakes the wait
                due = self.tick()
                wait = 0.5 if due is None else max(0.0, due - self._clock.monotonic())
                self._wake.wait(min(wait, 0.5))

        self._thread = threading.Thread(target=loop, name="output-patterns", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        with self._lock:
            self._playing.clear()
