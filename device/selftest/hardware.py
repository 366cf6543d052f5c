"""Hardware self-test: every device set up and read back on the chosen backend, the relay
in its safe state, no stuck keys, and a camera that delivers frames at a measured rate.

Nothing here moves the gate: the relay is only checked to be de-energised, never pulsed,
so the self-test is safe on a live turnstile. `blinkpay gpio-test` is the hands-on walk.
"""

from __future__ import annotations

from device.clock import Clock
from device.errors import BlinkpayError
from device.hw.camera import CameraRunner, camera_source_from_config
from device.hw.config import HardwareConfig
from device.hw.devices import Hardware, open_hardware
from device.hw.outputs import DigitalOutput
from device.selftest.check import Check

CAMERA_FRAMES = 8  # enough for a frame-rate figure, under a second at 15 fps
MIN_FPS_RATIO = 0.5  # below half the configured rate the pipeline's timing is off


def _output_check(name: str, output: DigitalOutput) -> Check:
    output.set_active(True)
    on = output.read_back()
    output.set_active(False)
    off = output.read_back()
    ok = on and not off
    detail = f"BCM {output.pin}: set on/off, read back {'on/off' if ok else f'{on}/{not off}'}"
    return Check(name, ok, detail)


def _gpio_checks(hardware: Hardware) -> list[Check]:
    checks = [_output_check(f"hw.led.{name}", led) for name, led in hardware.leds.leds.items()]
    checks.append(_output_check("hw.buzzer", hardware.buzzer))
    if hardware.challenge_light is None:
        checks.append(
            Check("hw.challenge_light", True, "none configured: no illumination challenge")
        )
    else:
        checks.append(_output_check("hw.challenge_light", hardware.challenge_light))
    relay = hardware.relay
    safe = not relay.energised and not relay.read_back()
    checks.append(
        Check(
            "hw.relay",
            safe,
            f"BCM {relay.pin}: {'de-energised (safe state)' if safe else 'ENERGISED'}, "
            f"{relay.mode} mode {relay.pulse_ms} ms, not pulsed by the self-test",
        )
    )
    stuck = hardware.keypad.stuck_keys()
    checks.append(
        Check(
            "hw.keypad",
            not stuck,
            "4x3 matrix scanned, no key down"
            if not stuck
            else f"keys down at idle (stuck or shorted): {' '.join(sorted(stuck))}",
        )
    )
    passage = hardware.passage
    if passage is None:
        checks.append(Check("hw.passage", True, "no PASS contact configured (pins.passage unset)"))
    else:
        closed = passage.is_active()
        checks.append(
            Check(
                "hw.passage",
                not closed,
                f"BCM {passage.pin}: contact {'CLOSED at idle' if closed else 'open at idle'}",
            )
        )
    return checks


def camera_check(
    config: HardwareConfig, sim: bool, clock: Clock, challenge_fps: float | None = None
) -> Check:
    """Frames at a measured rate; with a challenge light, at least the rate its code needs
    (a slower camera makes every challenge refuse as challenge_unavailable)."""
    camera = config.camera
    try:
        source = camera_source_from_config(camera, clock, sim)
    except BlinkpayError as exc:
        return Check("hw.camera", False, str(exc))
    runner = CameraRunner(source, clock, camera.stall_after_s)
    try:
        runner.start()
        runner.wait_frames(CAMERA_FRAMES, camera.stall_after_s + 2 * CAMERA_FRAMES / camera.fps)
        frame = runner.latest.get(timeout=0)
        health = runner.health()
    except BlinkpayError as exc:
        return Check("hw.camera", False, str(exc))
    except Exception as exc:  # a driver error is a failed check, not a crashed self-test
        return Check("hw.camera", False, f"{source.name}: {type(exc).__name__}: {exc}")
    finally:
        runner.close()
    size = f"{frame.rgb.shape[1]}x{frame.rgb.shape[0]}" if frame is not None else "-"
    enough = health.frames >= CAMERA_FRAMES or (health.ended and health.frames >= 2)
    ok = enough and health.fps >= MIN_FPS_RATIO * source.nominal_fps
    detail = (
        f"{source.name}: {health.frames} frames {size}, {health.fps:.1f} fps measured "
        f"(configured {source.nominal_fps:g})"
    )
    if challenge_fps is not None:
        fast_enough = health.ended or health.fps >= challenge_fps
        ok = ok and fast_enough
        detail += f"; the challenge needs {challenge_fps:g} fps" + (
            "" if fast_enough else ": TOO SLOW, every challenge would be refused"
        )
    return Check("hw.camera", ok, detail)


def hardware_checks(
    config: HardwareConfig, sim: bool, clock: Clock, challenge_fps: float | None = None
) -> list[Check]:
    """Every hardware check; each failure is a Check with ok=False, never an exception."""
    checks: list[Check] = []
    try:
        hardware = open_hardware(config, clock, sim)
    except BlinkpayError as exc:
        checks.append(Check("hw.gpio", False, str(exc)))
    except (OSError, RuntimeError, ValueError) as exc:
        checks.append(Check("hw.gpio", False, f"{type(exc).__name__}: {exc}"))
    else:
        with hardware:
            checks.append(
                Check(
                    "hw.gpio",
                    True,
                    f"{hardware.factory.name} backend, {len(config.pins.named_pins())} pins set up",
                )
            )
            checks.extend(_gpio_checks(hardware))
    checks.append(camera_check(config, sim, clock, challenge_fps))
    return checks
