"""The RPi.GPIO backend against a fake RPi.GPIO module that records every call."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from device.clock import FakeClock
from device.hw.config import HardwareConfig
from device.hw.devices import open_hardware
from device.hw.pins import pin_factory_from_config
from device.hw.pins_rpi import GpioUnavailable, RPiGPIOPinFactory
from device.hw.pins_sim import SimPinFactory
from device.selftest.hardware import hardware_checks

from .conftest import FakeGPIO

RPI = HardwareConfig(backend="rpi")


def test_config_chooses_the_backend(fake_gpio: FakeGPIO, clock: FakeClock) -> None:
    assert isinstance(pin_factory_from_config(RPI, clock), RPiGPIOPinFactory)
    assert isinstance(pin_factory_from_config(RPI, clock, sim=True), SimPinFactory)
    assert isinstance(pin_factory_from_config(HardwareConfig(), clock), SimPinFactory)


def test_devices_set_up_bcm_pins_with_the_right_modes_and_pulls(
    fake_gpio: FakeGPIO, clock: FakeClock
) -> None:
    hardware = open_hardware(RPI, clock)
    g = fake_gpio
    assert g.calls[0] == ("setmode", g.BCM)
    setups = {call[1]: call[2:] for call in g.named("setup")}  # last setup of each pin
    assert setups[24] == (g.OUT, g.PUD_OFF, g.LOW)  # relay: output, starts de-energised
    for led in (17, 27, 22, 23, 18, 26):  # 26: the challenge light, dark until a code plays
        assert setups[led] == (g.OUT, g.PUD_OFF, g.LOW)
    for col in (12, 16, 20):
        assert setups[col] == (g.IN, g.PUD_UP, -1)
    for row in (5, 6, 13, 19):
        assert setups[row] == (g.IN, g.PUD_OFF, -1)  # rows idle high-impedance
    assert setups[25] == (g.IN, g.PUD_UP, -1)  # PASS contact to GND
    assert g.named("add_event_detect") == [("add_event_detect", 25, g.BOTH, 20)]
    # the relay's first setup is already at the inactive level: no glitch through "on"
    first_relay = next(call for call in g.named("setup") if call[1] == 24)
    assert first_relay[4] == g.LOW

    hardware.relay.pulse()
    assert ("output", 24, g.HIGH) in g.calls
    hardware.close()
    relay_writes = [call for call in g.named("output") if call[1] == 24]
    assert relay_writes == [("output", 24, g.HIGH), ("output", 24, g.LOW)]  # released on close
    assert g.named("remove_event_detect") == [("remove_event_detect", 25)]
    cleanup = g.named("cleanup")
    assert cleanup == [("cleanup", [5, 6, 12, 13, 16, 17, 18, 19, 20, 22, 23, 24, 25, 26, 27])]


def test_keypad_scan_drives_one_row_low_at_a_time(fake_gpio: FakeGPIO, clock: FakeClock) -> None:
    hardware = open_hardware(RPI, clock)
    fake_gpio.calls.clear()
    assert hardware.keypad.scan() == frozenset()
    setups = [(c[1], c[2]) for c in fake_gpio.named("setup")]
    g = fake_gpio
    assert setups == [pair for row in (5, 6, 13, 19) for pair in ((row, g.OUT), (row, g.IN))]
    hardware.close()


def test_active_low_relay_starts_high(fake_gpio: FakeGPIO, clock: FakeClock) -> None:
    hardware = open_hardware(HardwareConfig(backend="rpi", relay_active_high=False), clock)
    first_relay = next(call for call in fake_gpio.named("setup") if call[1] == 24)
    assert first_relay[2:] == (fake_gpio.OUT, fake_gpio.PUD_OFF, fake_gpio.HIGH)
    hardware.close()


def test_cleanup_leaves_pins_it_did_not_set_up(fake_gpio: FakeGPIO) -> None:
    factory = RPiGPIOPinFactory()
    factory.setup_output(4, False)
    factory.close()
    assert fake_gpio.named("cleanup") == [("cleanup", [4])]
    factory.close()  # nothing left: no cleanup() of the whole chip
    assert len(fake_gpio.named("cleanup")) == 1


def test_board_mode_set_elsewhere_is_a_clear_error(fake_gpio: FakeGPIO) -> None:
    fake_gpio.mode = fake_gpio.BOARD
    with pytest.raises(GpioUnavailable, match="BOARD"):
        RPiGPIOPinFactory()


def test_hardware_checks_pass_on_the_real_backend_code(
    fake_gpio: FakeGPIO, clock: FakeClock
) -> None:
    checks = {c.name: c for c in hardware_checks(RPI, sim=False, clock=clock)}
    assert all(c.ok for c in checks.values()), checks
    assert "rpi-gpio 0.7.1-fake" in checks["hw.gpio"].detail
    assert fake_gpio.named("cleanup")  # the check freed its pins


def test_missing_library_is_a_failed_check_not_a_crash(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "RPi", None)  # import RPi.GPIO -> ImportError
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    checks = {c.name: c for c in hardware_checks(RPI, sim=False, clock=clock)}
    assert not checks["hw.gpio"].ok and "pip install" in checks["hw.gpio"].detail
    assert checks["hw.camera"].ok  # the rest still runs


def test_package_imports_without_rpi_gpio_and_picamera2() -> None:
    """In a fresh interpreter where RPi, picamera2 and libcamera cannot be imported."""
    code = textwrap.dedent(
        """
        import sys
        for name in ("RPi", "RPi.GPIO", "picamera2", "libcamera"):
            sys.modules[name] = None  # makes any import of them raise ImportError
        import device.hw, device.hw.pins, device.hw.pins_rpi, device.hw.devices
        import device.hw.camera, device.selftest.hardware, device.cli.gpio_test
        import device.cli.selftest
        from device.clock import FakeClock
        from device.selftest.hardware import hardware_checks
        from device.hw.config import HardwareConfig
        checks = hardware_checks(HardwareConfig(), sim=True, clock=FakeClock())
        assert all(c.ok for c in checks), checks
        bad = [n for n in ("RPi", "picamera2", "libcamera") if sys.modules.get(n) is not None]
        assert not bad, bad
        print("imported ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "imported ok" in result.stdout
