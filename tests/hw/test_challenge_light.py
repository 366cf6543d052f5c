"""The challenge light: plays a code on its pin at the bit boundaries, is optional by
config, and the self-test reads it back and holds the camera to the challenge's rate."""

from __future__ import annotations

import pytest

from device.clock import FakeClock
from device.hw.config import HardwareConfig, PinMap
from device.hw.devices import open_hardware
from device.selftest.hardware import hardware_checks


def test_the_code_plays_bit_by_bit_and_ends_dark() -> None:
    clock = FakeClock(start=0.0)
    hardware = open_hardware(HardwareConfig(), clock, sim=True)
    light, sim = hardware.challenge_light, hardware.sim
    assert light is not None and sim is not None and light.pin == 26
    start = light.play_code((True, True, False, True), 0.2)
    levels = []
    for _ in range(10):
        levels.append(light.is_active)
        clock.advance(0.1)
        hardware.scheduler.tick()
    assert start == 0.0
    assert levels == [True, True, True, True, False, False, True, True, False, False]
    assert [(round(p.start, 3), round(p.duration, 3)) for p in sim.pulses(26)] == [
        (0.0, 0.4),
        (0.6, 0.2),
    ]
    with pytest.raises(ValueError):
        light.play_code((), 0.2)
    hardware.close()


def test_a_terminal_without_a_ring_has_no_challenge_light() -> None:
    pins = PinMap.model_validate({"challenge_light": False})
    assert pins.challenge_light is None and "challenge_light" not in pins.named_pins()
    config = HardwareConfig(pins=pins)
    hardware = open_hardware(config, FakeClock(), sim=True)
    assert hardware.challenge_light is None
    hardware.close()
    checks = {c.name: c for c in hardware_checks(config, sim=True, clock=FakeClock())}
    assert (
        checks["hw.challenge_light"].ok and "none configured" in checks["hw.challenge_light"].detail
    )


def test_selftest_holds_the_camera_to_the_challenge_frame_rate() -> None:
    config = HardwareConfig()
    ok = {c.name: c for c in hardware_checks(config, True, FakeClock(), challenge_fps=10.0)}
    assert ok["hw.challenge_light"].ok and ok["hw.camera"].ok
    assert "the challenge needs 10 fps" in ok["hw.camera"].detail
    slow = {c.name: c for c in hardware_checks(config, True, FakeClock(), challenge_fps=100.0)}
    assert not slow["hw.camera"].ok and "TOO SLOW" in slow["hw.camera"].detail
