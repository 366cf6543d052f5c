"""Simulated GPIO: pins, pull resistors, switches between pins, and a timed record of outputs.

The model is electrical enough for the keypad's problems to show up as they do on the
bench: a closed switch joins two pins, an input reads the level of any output it is
joined to (low wins, as an open-drain bus would), else its pull resistor. Three keys
pressed at the corners of a rectangle therefore produce the fourth "ghost" key, exactly
like a diode-less membrane keypad.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass

from device.clock import Clock
from device.hw.pins import EdgeCallback, Pull


@dataclass(frozen=True)
class Pulse:
    """One active period of an output: when it started and how long it lasted (s)."""

    start: float
    duration: float


@dataclass
class _SimPin:
    mode: str = "unset"  # "unset" | "in" | "out"
    level: bool = False  # driven level for an output
    pull: Pull = "off"


# A pseudo pin for ground, so a contact "to GND" is a switch like any other.
SIM_GND = -1


class SimPinFactory:
    name = "sim"

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._pins: dict[int, _SimPin] = {}
        self._switches: dict[int, set[int]] = defaultdict(set)
        self._external: dict[int, bool] = {}
        self._history: dict[int, list[tuple[float, bool]]] = defaultdict(list)
        self._callbacks: dict[int, list[EdgeCallback]] = defaultdict(list)
        self._lock = threading.RLock()
        self._pins[SIM_GND] = _SimPin(mode="out", level=False)
        self.closed = False

    # --- the PinFactory protocol -------------------------------------------------------
    def setup_output(self, pin: int, level: bool) -> None:
        with self._lock:
            state = self._pins.setdefault(pin, _SimPin())
            was = state.mode == "out" and state.level
            state.mode, state.level = "out", level
            if not self._history[pin] or was != level:
                self._history[pin].append((self._clock.monotonic(), level))

    def setup_input(self, pin: int, pull: Pull) -> None:
        with self._lock:
            state = self._pins.setdefault(pin, _SimPin())
            state.mode, state.pull = "in", pull

    def write(self, pin: int, level: bool) -> None:
        with self._lock:
            state = self._pins.get(pin)
            if state is None or state.mode != "out":
                raise RuntimeError(f"BCM {pin} is not set up as an output")
            if state.level != level:
                state.level = level
                self._history[pin].append((self._clock.monotonic(), level))

    def read(self, pin: int) -> bool:
        with self._lock:
            state = self._pins.get(pin)
            if state is None or state.mode == "unset":
                raise RuntimeError(f"BCM {pin} is not set up")
            if state.mode == "out":
                return state.level
            return self._input_level(pin)

    def watch_edges(self, pin: int, callback: EdgeCallback, bounce_ms: int) -> None:
        with self._lock:
            self._callbacks[pin].append(callback)

    def close(self) -> None:
        with self._lock:
            for pin, state in self._pins.items():
                if pin != SIM_GND:
                    state.mode, state.pull = "in", "off"
            self._callbacks.clear()
            self.closed = True

    # --- what tests and the demo do to the simulated world ------------------------------
    def set_switch(self, pin_a: int, pin_b: int, closed: bool) -> None:
        """Close or open a switch between two pins (a keypad key; SIM_GND for a contact to
        ground); watched inputs whose level changes get their edge callbacks."""
        with self._lock:
            watched = [p for p, cbs in self._callbacks.items() if cbs and self.mode(p) == "in"]
            before = {p: self._input_level(p) for p in watched}
            if closed:
                self._switches[pin_a].add(pin_b)
                self._switches[pin_b].add(pin_a)
            else:
                self._switches[pin_a].discard(pin_b)
                self._switches[pin_b].discard(pin_a)
            fired = [
                (callback, level)
                for p in watched
                if (level := self._input_level(p)) != before[p]
                for callback in self._callbacks[p]
            ]
        for callback, level in fired:
            callback(level)

    def drive_input(self, pin: int, level: bool | None) -> None:
        """Drive an input from outside (None = let go); fires edge callbacks on a change."""
        with self._lock:
            before = self._input_level(pin)
            if level is None:
                self._external.pop(pin, None)
            else:
                self._external[pin] = level
            after = self._input_level(pin)
            callbacks = list(self._callbacks[pin]) if after != before else []
        for callback in callbacks:
            callback(after)

    def level(self, pin: int) -> bool:
        return self.read(pin)

    def mode(self, pin: int) -> str:
        with self._lock:
            return self._pins.get(pin, _SimPin()).mode

    def pull(self, pin: int) -> Pull:
        with self._lock:
            return self._pins.get(pin, _SimPin()).pull

    def history(self, pin: int) -> list[tuple[float, bool]]:
        """Every level an output took, with the clock time it took it."""
        with self._lock:
            return list(self._history[pin])

    def pulses(self, pin: int, active_high: bool = True) -> list[Pulse]:
        """Completed active periods of an output (an unfinished one is left out)."""
        pulses: list[Pulse] = []
        started: float | None = None
        for when, level in self.history(pin):
            active = level == active_high
            if active and started is None:
                started = when
            elif not active and started is not None:
                pulses.append(Pulse(started, when - started))
                started = None
        return pulses

    def _input_level(self, pin: int) -> bool:
        if pin in self._external:
            return self._external[pin]
        joined = self._joined(pin)
        driven = [
            self._pins[p].level for p in joined if p in self._pins and self._pins[p].mode == "out"
        ]
        driven += [self._external[p] for p in joined if p in self._external]
        if driven:
            return all(driven)  # low wins
        pulls = {self._pins[p].pull for p in joined if p in self._pins}
        if "down" in pulls:
            return False
        return "up" in pulls

    def _joined(self, pin: int) -> set[int]:
        seen = {pin}
        todo = [pin]
        while todo:
            for other in self._switches[todo.pop()]:
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return seen
