"""LED and buzzer patterns: exact timing on a FakeClock through the scheduler."""

from __future__ import annotations

import pytest

from device.clock import FakeClock
from device.hw.devices import Hardware
from device.hw.outputs import INDICATIONS, Buzzer, Led
from device.hw.patterns import OutputScheduler, Pattern, blink, blink_hz, sequence, solid
from device.hw.pins_sim import SimPinFactory


def step(
    hw_or_scheduler: OutputScheduler, clock: FakeClock, seconds: float, dt: float = 0.01
) -> None:
    """Move time forward in small steps, ticking the scheduler as its thread would."""
    for _ in range(round(seconds / dt)):
        clock.advance(dt)
        hw_or_scheduler.tick()


def test_pattern_levels_and_hold_times_are_pure() -> None:
    pattern = blink(0.2, 0.3, count=2)
    assert pattern.level_at(0.0) == (True, pytest.approx(0.2))
    assert pattern.level_at(0.25) == (False, pytest.approx(0.25))
    assert pattern.level_at(0.6)[0] is True
    assert pattern.level_at(1.0) == (False, None)  # after two periods: end level for good
    assert solid(True).level_at(123.0) == (True, None)
    assert blink_hz(4.0).level_at(0.13) == (False, pytest.approx(0.12))
    with pytest.raises(ValueError):
        Pattern(((True, 0.0),))


def test_led_blink_timing_with_fake_clock(clock: FakeClock) -> None:
    sim = SimPinFactory(clock)
    scheduler = OutputScheduler(clock)
    led = Led(sim, 17, scheduler, name="green")
    start = clock.monotonic()
    led.blink(0.1, 0.2, count=3)
    step(scheduler, clock, 1.5)
    pulses = sim.pulses(17)
    assert [round(p.start - start, 3) for p in pulses] == [0.0, 0.3, 0.6]
    assert [round(p.duration, 3) for p in pulses] == [0.1, 0.1, 0.1]
    assert not led.is_active and not scheduler.is_playing(led)


def test_new_pattern_replaces_old_and_on_off_cancel_patterns(clock: FakeClock) -> None:
    sim = SimPinFactory(clock)
    scheduler = OutputScheduler(clock)
    led = Led(sim, 27, scheduler)
    led.blink(0.5, 0.5)  # forever
    step(scheduler, clock, 0.2)
    led.on()
    step(scheduler, clock, 2.0)
    assert sim.level(27) is True and len(sim.history(27)) == 2  # initial off, then on for good
    led.off()
    assert sim.level(27) is False


def test_next_due_time_lets_the_thread_sleep_until_the_change(clock: FakeClock) -> None:
    sim = SimPinFactory(clock)
    scheduler = OutputScheduler(clock)
    led = Led(sim, 22, scheduler)
    led.play(sequence([(True, 0.25), (False, 0.5)], repeat=None))
    assert scheduler.tick() == pytest.approx(clock.monotonic() + 0.25)


def test_active_low_led_is_off_high_at_start(clock: FakeClock) -> None:
    sim = SimPinFactory(clock)
    led = Led(sim, 23, OutputScheduler(clock), active_high=False)
    assert sim.level(23) is True and not led.read_back()
    led.on()
    assert sim.level(23) is False and led.read_back()


def test_buzzer_ok_is_two_short_beeps_and_click_is_short(
    hardware: Hardware, clock: FakeClock
) -> None:
    sim = hardware.sim
    assert sim is not None
    buzzer = hardware.buzzer
    start = clock.monotonic()
    buzzer.ok()
    step(hardware.scheduler, clock, 0.5, dt=0.005)
    assert [(round(p.start - start, 3), round(p.duration, 3)) for p in sim.pulses(18)] == [
        (0.0, 0.08),
        (0.14, 0.08),
    ]
    buzzer.click()
    step(hardware.scheduler, clock, 0.1, dt=0.005)
    assert round(sim.pulses(18)[-1].duration, 3) == 0.015
    assert Buzzer.ERROR.duration == pytest.approx(0.4)


def test_led_board_indications(hardware: Hardware, clock: FakeClock) -> None:
    sim = hardware.sim
    assert sim is not None
    board = hardware.leds
    board.show("blink_prompt")
    step(hardware.scheduler, clock, 1.0)
    assert len(sim.pulses(23)) == 2  # the prompt light blinks at 2 Hz
    assert not any(sim.level(pin) for pin in (17, 27, 22))
    board.show("approved")
    step(hardware.scheduler, clock, 2.5)
    assert [round(p.duration, 2) for p in sim.pulses(17)] == [2.0]
    assert sim.level(23) is False
    with pytest.raises(ValueError, match="unknown indication"):
        board.show("party")
    assert set(INDICATIONS) >= {"idle", "look", "blink_prompt", "pin", "approved", "declined"}
    board.off()
    assert not any(sim.level(pin) for pin in (17, 27, 22, 23))
