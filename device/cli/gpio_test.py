"""blinkpay gpio-test: walk a field engineer through every LED, the challenge light, the
relay, the buzzer, the gate's PASS contact and every key, asking at each step whether it worked.

With --sim the same walk runs on simulated hardware without a person: each question is
answered by looking at the simulated pins (is the LED's pin at its active level, did the
relay pin pulse for its configured time), and keys are pressed by simulated fingers.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from device.cli._common import add_config_argument, config_from_args
from device.clock import Clock, SystemClock
from device.config import Config
from device.core.pin_entry import KEYPAD_LAYOUT
from device.hw.devices import Hardware, open_hardware
from device.hw.pins_sim import SIM_GND

HELP = "walk through every LED, challenge light, relay, buzzer, key"

KEY_TIMEOUT_S = 60.0
PASSAGE_TIMEOUT_S = 20.0
SIM_KEY_HOLD_S = 0.15  # well past the debounce, as a finger is (and a busy host still scans it)
CHALLENGE_FLASHES = 3
CHALLENGE_BIT_S = 0.4  # slow enough to count by eye


@dataclass(frozen=True)
class StepResult:
    name: str
    ok: bool
    detail: str


class Walk:
    """Asks questions: of a person (stdin), or, on simulated hardware, of the pins."""

    def __init__(self, hardware: Hardware, clock: Clock, interactive: bool) -> None:
        self.hw, self.clock, self.interactive = hardware, clock, interactive
        self.results: list[StepResult] = []

    def say(self, text: str) -> None:
        print(text, flush=True)

    def ask(self, question: str, observed: Callable[[], bool]) -> bool:
        """A yes/no answer: the engineer's, or (sim) what the simulated pins show."""
        if not self.interactive:
            answer = observed()
            self.say(f"{question} [y/n] {'y' if answer else 'n'}  (simulated)")
            return answer
        while True:
            try:
                reply = input(f"{question} [y/n] ").strip().lower()
            except EOFError:
                return False
            if reply in ("y", "yes", "n", "no"):
                return reply.startswith("y")

    def record(self, name: str, ok: bool, detail: str) -> None:
        self.results.append(StepResult(name, ok, detail))

    def leds(self) -> None:
        for name, led in self.hw.leds.leds.items():
            led.on()
            lit = self.ask(f"Is the {name} LED lit?", led.read_back)
            led.off()
            self.record(f"led {name}", lit, f"BCM {led.pin}")

    def relay(self) -> None:
        relay = self.hw.relay
        self.say(f"The relay (BCM {relay.pin}) pulses for {relay.pulse_ms} ms: stand clear.")
        if self.interactive:
            with contextlib.suppress(EOFError):
                input("Press Enter to pulse the relay. ")
        relay.pulse()
        self.clock.sleep(relay.pulse_ms / 1000.0 + 0.1)
        sim = self.hw.sim

        def pulsed() -> bool:
            if sim is None:
                return False
            pulses = sim.pulses(relay.pin, relay.active_high)
            return bool(pulses) and pulses[-1].duration >= relay.pulse_ms / 1000.0 * 0.9

        clicked = self.ask("Did the relay click (and the gate release)?", pulsed)
        relay.release()
        self.record("relay", clicked and not relay.read_back(), f"BCM {relay.pin}")

    def buzzer(self) -> None:
        buzzer = self.hw.buzzer
        buzzer.ok()
        self.clock.sleep(buzzer.OK.period + 0.1)
        sim = self.hw.sim

        def two_beeps() -> bool:
            return sim is not None and len(sim.pulses(buzzer.pin, buzzer.active_high)) == 2

        heard = self.ask("Did you hear two short beeps?", two_beeps)
        self.record("buzzer", heard, f"BCM {buzzer.pin}")

    def challenge_light(self) -> None:
        light = self.hw.challenge_light
        if light is None:
            self.say("No challenge light configured (pins.challenge_light); skipped.")
            return
        code = (True, False) * CHALLENGE_FLASHES
        light.play_code(code, CHALLENGE_BIT_S)
        self.clock.sleep(len(code) * CHALLENGE_BIT_S + 0.1)
        sim = self.hw.sim

        def flashed() -> bool:
            pulses = [] if sim is None else sim.pulses(light.pin, light.active_high)
            return len(pulses) == CHALLENGE_FLASHES

        seen = self.ask(
            f"Did the LED ring beside the camera flash {CHALLENGE_FLASHES} times (an IR ring: "
            "seen through a phone camera)?",
            flashed,
        )
        light.off()
        self.record("challenge light", seen, f"BCM {light.pin}")

    def passage(self) -> None:
        sensor = self.hw.passage
        if sensor is None:
            self.say("No PASS contact configured; skipped.")
            return
        self.say(
            f"Trigger the gate's PASS contact (walk through) within {PASSAGE_TIMEOUT_S:.0f} s."
        )
        sensor.arm()
        deadline = self.clock.monotonic() + PASSAGE_TIMEOUT_S
        sim = self.hw.sim
        if sim is not None:
            sim.set_switch(sensor.pin, SIM_GND, True)
            sim.set_switch(sensor.pin, SIM_GND, False)
        while sensor.status() == "waiting" and self.clock.monotonic() < deadline:
            self.clock.sleep(0.05)
        passed = sensor.status() == "passed"
        sensor.disarm()
        self.record(
            "passage contact", passed, f"BCM {sensor.pin}: {'seen' if passed else 'not seen'}"
        )

    def keys(self) -> None:
        expected = [key for line in KEYPAD_LAYOUT for key in line]
        self.say(f"Press every key once ({' '.join(expected)}), within {KEY_TIMEOUT_S:.0f} s.")
        keypad, fingers, seen = self.hw.keypad, self.hw.fingers, set[str]()
        keypad.start()
        deadline = self.clock.monotonic() + KEY_TIMEOUT_S
        if fingers is not None:
            for key in expected:
                fingers.press(key)
                self.clock.sleep(SIM_KEY_HOLD_S)
                fingers.release(key)
                self.clock.sleep(SIM_KEY_HOLD_S)
            deadline = self.clock.monotonic() + 1.0  # every press is queued by now
        while seen != set(expected) and self.clock.monotonic() < deadline:
            event = keypad.get(timeout=0.2)
            if event is not None and event.key not in seen:
                seen.add(event.key)
                grid = "  ".join(
                    "".join(k if k in seen else "." for k in line) for line in KEYPAD_LAYOUT
                )
                self.say(f"  seen {event.key}   [{grid}]  {len(seen)}/{len(expected)}")
        keypad.close()
        missing = [key for key in expected if key not in seen]
        self.record(
            "keys",
            not missing,
            "all 12 seen" if not missing else f"never seen: {' '.join(missing)}",
        )

    def vending(self, config: Config) -> None:
        """Vending mode: the MDB transport, its port, and the machine's controller heard."""
        from device.selftest.vending import describe, vending_checks

        if config.device.mode != "vending":
            self.say("Turnstile mode: no vending machine; skipped.")
            return
        self.say(f"Vending machine link: {describe(config.vending)}")
        self.say("Power the vending machine; listening for its controller...")
        for check in vending_checks(config, not self.interactive, self.clock):
            self.say(f"  {check.detail}")
            self.record(check.name.replace(".", " "), check.ok, check.detail[:60])

    def summary(self) -> bool:
        self.say("\ngpio-test summary")
        for result in self.results:
            self.say(f"  {'PASS' if result.ok else 'FAIL'}  {result.name:<16} {result.detail}")
        failed = [r.name for r in self.results if not r.ok]
        self.say(f"\n{'all passed' if not failed else 'FAILED: ' + ', '.join(failed)}")
        return not failed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    parser.add_argument(
        "--sim", action="store_true", help="simulated hardware, answered automatically (no prompts)"
    )


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    clock = SystemClock()
    interactive = not args.sim
    if interactive and not sys.stdin.isatty():
        print("gpio-test: answering from stdin (not a terminal)", file=sys.stderr)
    with open_hardware(config.hardware, clock, sim=args.sim) as hardware:
        hardware.scheduler.start()
        walk = Walk(hardware, clock, interactive)
        walk.say(f"gpio-test on the {hardware.factory.name} backend\n")
        started = time.monotonic()
        steps = (walk.leds, walk.challenge_light, walk.relay, walk.buzzer, walk.passage, walk.keys)
        for step in steps:
            step()
        walk.vending(config)
        ok = walk.summary()
        walk.say(f"({time.monotonic() - started:.1f} s)")
    return 0 if ok else 1
