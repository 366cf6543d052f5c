"""Gate relay safety and timing, and the passage contact, on simulated pins."""

from __future__ import annotations

import pytest

from device.clock import FakeClock
from device.hw.devices import Hardware
from device.hw.gate import GateRelay, PassageSensor, PassageWatch, _release_at_exit
from device.hw.patterns import OutputScheduler
from device.hw.pins_sim import SIM_GND, SimPinFactory


def ticks(scheduler: OutputScheduler, clock: FakeClock, seconds: float, dt: float = 0.01) -> None:
    for _ in range(round(seconds / dt)):
        clock.advance(dt)
        scheduler.tick()


@pytest.mark.parametrize("active_high", [True, False])
def test_relay_is_de_energised_from_set_up(clock: FakeClock, active_high: bool) -> None:
    sim = SimPinFactory(clock)
    relay = GateRelay(sim, 24, OutputScheduler(clock), active_high=active_high)
    assert sim.history(24) == [(clock.monotonic(), not active_high)]  # never passed through on
    assert not relay.energised and not relay.read_back()


def test_pulse_lasts_the_configured_time(hardware: Hardware, clock: FakeClock) -> None:
    sim = hardware.sim
    assert sim is not None
    start = clock.monotonic()
    hardware.relay.pulse()
    ticks(hardware.scheduler, clock, 1.0, dt=0.005)
    assert [(round(p.start - start, 3), round(p.duration, 3)) for p in sim.pulses(24)] == [
        (0.0, 0.3)
    ]
    hardware.relay.pulse(150)
    ticks(hardware.scheduler, clock, 0.5, dt=0.005)
    assert round(sim.pulses(24)[-1].duration, 3) == 0.15


def test_pulses_shorter_than_100_ms_are_refused(hardware: Hardware, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="100 ms"):
        hardware.relay.pulse(50)
    with pytest.raises(ValueError, match="100 ms"):
        GateRelay(SimPinFactory(clock), 24, OutputScheduler(clock), pulse_ms=99)


def test_relay_released_after_an_exception_in_the_middle_of_a_pulse(clock: FakeClock) -> None:
    sim = SimPinFactory(clock)
    scheduler = OutputScheduler(clock)
    with (
        pytest.raises(RuntimeError, match="crash"),
        GateRelay(sim, 24, scheduler, pulse_ms=500) as relay,
    ):
        relay.pulse()
        ticks(scheduler, clock, 0.12)
        assert sim.level(24) is True  # mid-pulse
        raise RuntimeError("crash mid-pulse")
    assert sim.level(24) is False and not relay.energised
    assert [round(p.duration, 2) for p in sim.pulses(24)] == [0.12]  # cut short, not 0.5 s
    ticks(scheduler, clock, 1.0)  # and the cancelled pattern never comes back
    assert sim.level(24) is False


def test_hardware_close_releases_a_held_relay(clock: FakeClock) -> None:
    from device.hw.config import HardwareConfig
    from device.hw.devices import open_hardware

    config = HardwareConfig(relay_mode="level")
    hardware = open_hardware(config, clock, sim=True)
    sim = hardware.sim
    assert sim is not None
    try:
        hardware.relay.actuate()
        assert sim.level(24) is True
        raise KeyError("boom")
    except KeyError:
        hardware.close()
    assert sim.pulses(24) and sim.closed


def test_exit_hook_releases_and_tolerates_a_closed_gpio(clock: FakeClock) -> None:
    import weakref

    sim = SimPinFactory(clock)
    relay = GateRelay(sim, 24, OutputScheduler(clock), mode="level")
    relay.actuate()
    _release_at_exit(weakref.ref(relay))
    assert sim.level(24) is False
    relay.hold_open()
    sim.close()  # pins are inputs now: writing fails, the hook must not raise at exit
    _release_at_exit(weakref.ref(relay))


def test_passage_within_timeout_is_seen(hardware: Hardware, clock: FakeClock) -> None:
    sim, passage = hardware.sim, hardware.passage
    assert sim is not None and passage is not None
    assert passage.status() == "idle"
    passage.arm()
    clock.advance(2.0)
    assert passage.status() == "waiting"
    sim.set_switch(25, SIM_GND, True)
    sim.set_switch(25, SIM_GND, False)
    clock.advance(30.0)
    assert passage.status() == "passed"


def test_no_passage_times_out(hardware: Hardware, clock: FakeClock) -> None:
    passage = hardware.passage
    assert passage is not None
    passage.arm()
    clock.advance(7.99)
    assert passage.status() == "waiting"
    clock.advance(0.01)
    assert passage.status() == "timed_out"


def test_contact_before_arming_or_stuck_closed_does_not_count(clock: FakeClock) -> None:
    sim = SimPinFactory(clock)
    sensor = PassageSensor(sim, 25, clock, timeout_s=5.0)
    sim.set_switch(25, SIM_GND, True)  # closes before the ride was paid, and stays closed
    assert sensor.is_active()
    sensor.arm()
    clock.advance(6.0)
    assert sensor.status() == "timed_out"


def test_active_high_contact_uses_pull_down(clock: FakeClock) -> None:
    sim = SimPinFactory(clock)
    sensor = PassageSensor(sim, 25, clock, active_low=False)
    assert sim.pull(25) == "down" and not sensor.is_active()
    sensor.arm()
    sim.drive_input(25, True)
    assert sensor.status() == "passed"


def test_passage_watch_is_pure() -> None:
    watch = PassageWatch(armed_at=10.0, timeout_s=5.0)
    watch.on_active(9.0)  # before arming: ignored
    assert watch.state(12.0) == "waiting"
    watch.on_active(15.0)  # at the deadline: too late
    assert watch.state(15.0) == "timed_out"
