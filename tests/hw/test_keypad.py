"""Keypad scanning and debouncing on simulated pins, stepped with a FakeClock."""

from __future__ import annotations

import random
import time

import pytest

from device.clock import FakeClock
from device.core.pin_entry import KEYPAD_LAYOUT
from device.hw.devices import Hardware
from device.hw.keypad import KeyDebouncer, KeyEvent

ALL_KEYS = [key for line in KEYPAD_LAYOUT for key in line]


def bounce_train(rng: random.Random, start: float, closing: bool) -> list[tuple[float, bool]]:
    """Contact chatter lasting 1..5 ms (toggles every 0.1..1 ms), ending in the final state."""
    length = rng.uniform(0.001, 0.005)
    t, state, changes = start, closing, []
    while t < start + length:
        changes.append((t, state))
        t += rng.uniform(0.0001, 0.001)
        state = not state
    changes.append((start + length, closing))
    return changes


def run_timeline(
    hw: Hardware,
    clock: FakeClock,
    key: str,
    changes: list[tuple[float, bool]],
    until: float,
    step: float,
) -> list[KeyEvent]:
    """Apply contact changes as simulated time passes, scanning every `step` seconds."""
    assert hw.fingers is not None
    events: list[KeyEvent] = []
    pending = sorted(changes)
    t0 = clock.monotonic()
    while clock.monotonic() - t0 < until:
        now = clock.monotonic() - t0
        while pending and pending[0][0] <= now:
            hw.fingers.set(key, pending.pop(0)[1])
        events += hw.keypad.poll()
        clock.advance(step)
    return events


@pytest.mark.parametrize("scan_ms", [1, 4])
def test_bounce_trains_on_every_key_give_exactly_one_press(
    hardware: Hardware, clock: FakeClock, scan_ms: int
) -> None:
    rng = random.Random(scan_ms)
    for key in ALL_KEYS:
        for _ in range(5):  # five presses of each key, each with its own chatter
            changes = bounce_train(rng, 0.010, closing=True)
            changes += bounce_train(rng, 0.150, closing=False)
            events = run_timeline(hardware, clock, key, changes, 0.300, scan_ms / 1000.0)
            assert [e.key for e in events] == [key]


def test_chatter_while_held_does_not_press_again(hardware: Hardware, clock: FakeClock) -> None:
    rng = random.Random(7)
    changes = [(0.0, True)]
    changes += bounce_train(rng, 0.100, closing=True)  # a 1..5 ms dropout mid-press
    changes += [(0.300, False)]
    events = run_timeline(hardware, clock, "5", changes, 0.500, 0.001)
    assert [e.key for e in events] == ["5"]


def test_holding_a_key_presses_once_no_auto_repeat(hardware: Hardware, clock: FakeClock) -> None:
    events = run_timeline(hardware, clock, "8", [(0.0, True), (3.0, False)], 3.2, 0.004)
    assert [e.key for e in events] == ["8"]


def test_two_keys_at_once_give_no_press_then_the_keypad_recovers(
    hardware: Hardware, clock: FakeClock
) -> None:
    assert hardware.fingers is not None
    hardware.fingers.press("1")
    hardware.fingers.press("9")
    events: list[KeyEvent] = []
    for _ in range(50):
        events += hardware.keypad.poll()
        clock.advance(0.004)
    hardware.fingers.release("1")  # one still held: still nothing until all are up
    for _ in range(50):
        events += hardware.keypad.poll()
        clock.advance(0.004)
    hardware.fingers.release("9")
    for _ in range(20):
        events += hardware.keypad.poll()
        clock.advance(0.004)
    assert events == []
    events = run_timeline(hardware, clock, "9", [(0.0, True), (0.1, False)], 0.2, 0.004)
    assert [e.key for e in events] == ["9"]


def test_ghost_key_of_a_three_key_rectangle_is_seen_and_rejected(
    hardware: Hardware, clock: FakeClock
) -> None:
    assert hardware.fingers is not None
    for key in "124":  # corners of the 1-2-4-5 rectangle
        hardware.fingers.press(key)
    assert hardware.keypad.scan() == frozenset("1245")  # the diode-less matrix shows a ghost 5
    events = [e for _ in range(50) for e in (hardware.keypad.poll(), clock.advance(0.004))[0]]
    assert events == []


def test_rolled_over_key_is_dropped_not_guessed(hardware: Hardware, clock: FakeClock) -> None:
    assert hardware.fingers is not None
    timeline = [(0.0, "1", True), (0.05, "2", True), (0.08, "1", False), (0.2, "2", False)]
    events: list[KeyEvent] = []
    for step in range(100):
        now = step * 0.004
        for when, key, down in timeline:
            if abs(when - now) < 0.002:
                hardware.fingers.set(key, down)
        events += hardware.keypad.poll()
        clock.advance(0.004)
    assert [e.key for e in events] == ["1"]


def test_scan_leaves_rows_high_impedance_and_columns_pulled_up(hardware: Hardware) -> None:
    sim = hardware.sim
    assert sim is not None
    hardware.keypad.scan()
    config_rows, config_cols = [5, 6, 13, 19], [12, 16, 20]
    assert all(sim.mode(pin) == "in" and sim.pull(pin) == "off" for pin in config_rows)
    assert all(sim.mode(pin) == "in" and sim.pull(pin) == "up" for pin in config_cols)


def test_debouncer_alone_needs_the_set_stable_for_the_debounce_time() -> None:
    debouncer = KeyDebouncer(0.020)
    down = frozenset("3")
    assert debouncer.update(down, 0.000) == []
    assert debouncer.update(down, 0.019) == []
    assert debouncer.update(down, 0.020) == ["3"]
    assert debouncer.update(down, 0.500) == []
    assert debouncer.update(frozenset(), 0.510) == []
    assert debouncer.update(frozenset(), 0.530) == []
    assert debouncer.settled == frozenset()


def test_key_event_repr_hides_digits_but_names_control_keys() -> None:
    digit = KeyEvent("7", 12.5)
    assert "7" not in repr(digit) and "7" not in str(digit) and "7" not in f"{digit}"
    assert digit.kind == "digit"
    assert KeyEvent("*", 1.0).kind == "cancel" and "'*'" in repr(KeyEvent("*", 1.0))
    assert KeyEvent("#", 1.0).kind == "enter"


def test_stuck_key_is_reported(hardware: Hardware) -> None:
    assert hardware.fingers is not None
    assert hardware.keypad.stuck_keys() == frozenset()
    hardware.fingers.press("0")
    assert hardware.keypad.stuck_keys() == frozenset("0")


def test_scanning_thread_delivers_events(hardware: Hardware, clock: FakeClock) -> None:
    # the thread waits in real time; the test moves the FakeClock the debouncer reads
    assert hardware.fingers is not None
    hardware.keypad.start()
    try:
        hardware.fingers.press("#")
        deadline = time.monotonic() + 2.0
        event = None
        while event is None and time.monotonic() < deadline:
            clock.advance(0.005)
            event = hardware.keypad.get(timeout=0.01)
        assert event is not None and event.key == "#"
    finally:
        hardware.keypad.close()
