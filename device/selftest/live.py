"""The self-test of a running terminal (the remote `selftest` command): the same subsystems
as `blinkpay selftest`, checked on the parts the terminal already holds, without
disturbing it: no camera re-open (the running capture's own health), no LED or buzzer
toggled (each output's pin read back against what the terminal last set), no keypad
rescan (the scan thread owns the rows), the open store verified in place, the live broker
session instead of a second connection."""

from __future__ import annotations

from device.config import Config
from device.hw.camera.runner import CameraHealth
from device.hw.devices import Hardware
from device.hw.outputs import DigitalOutput
from device.selftest.check import Check
from device.selftest.hardware import MIN_FPS_RATIO
from device.selftest.storage import verify_store
from device.selftest.suite import model_checks
from device.store.terminal_store import Store


def _output_agrees(name: str, output: DigitalOutput) -> Check:
    expected, actual = output.is_active, output.read_back()
    detail = f"BCM {output.pin}: set {'on' if expected else 'off'}, pin reads "
    return Check(name, expected == actual, detail + ("on" if actual else "off"))


def output_checks(hardware: Hardware, *, idle: bool) -> list[Check]:
    checks = [_output_agrees(f"hw.led.{n}", led) for n, led in hardware.leds.leds.items()]
    checks.append(_output_agrees("hw.buzzer", hardware.buzzer))
    relay = hardware.relay
    relay_check = _output_agrees("hw.relay", relay)
    if idle and relay.energised:  # at idle the gate must be in its safe state
        relay_check = Check("hw.relay", False, f"BCM {relay.pin}: ENERGISED while idle")
    checks.append(relay_check)
    held = hardware.keypad.debouncer.settled
    checks.append(
        Check(
            "hw.keypad",
            not (idle and held),
            "no key held" if not held else f"keys held: {' '.join(sorted(held))}",
        )
    )
    if hardware.passage is not None:
        closed = hardware.passage.is_active()
        checks.append(
            Check(
                "hw.passage",
                not (idle and closed),
                f"BCM {hardware.passage.pin}: contact {'closed' if closed else 'open'}",
            )
        )
    return checks


def camera_health_check(health: CameraHealth | None, nominal_fps: float) -> Check:
    if health is None:
        return Check("hw.camera", False, "the camera is not running")
    ok = not health.stalled and health.frames > 0 and health.fps >= MIN_FPS_RATIO * nominal_fps
    detail = (
        f"{health.source}: {health.frames} frames, {health.fps:.1f} fps measured "
        f"(configured {nominal_fps:g}), {health.stalls} stalls, last frame "
        f"{health.last_frame_age_s:.1f} s ago"
    )
    return Check("hw.camera", ok, detail)


def running_checks(
    config: Config,
    *,
    hardware: Hardware,
    camera: CameraHealth | None,
    store: Store,
    broker: Check,
    idle: bool,
) -> list[Check]:
    checks = [Check("hw.gpio", True, f"{hardware.factory.name} backend (running)")]
    checks += output_checks(hardware, idle=idle)
    checks.append(camera_health_check(camera, config.hardware.camera.fps))
    checks += model_checks(config)
    checks += verify_store(store)
    checks.append(broker)
    return checks
