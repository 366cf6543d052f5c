"""Every GPIO device of the terminal built from the config, on the chosen pin factory."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from device.clock import Clock
from device.hw.challenge_light import ChallengeLight
from device.hw.config import HardwareConfig
from device.hw.gate import GateRelay, PassageSensor
from device.hw.keypad import Keypad, SimKeypad
from device.hw.outputs import Buzzer, LedBoard
from device.hw.patterns import OutputScheduler
from device.hw.pins import PinFactory, pin_factory_from_config
from device.hw.pins_sim import SimPinFactory


@dataclass
class Hardware:
    factory: PinFactory
    scheduler: OutputScheduler
    relay: GateRelay
    leds: LedBoard
    buzzer: Buzzer
    keypad: Keypad
    passage: PassageSensor | None
    fingers: SimKeypad | None  # presses keys on simulated hardware (tests, demo); else None
    challenge_light: ChallengeLight | None = None  # None: this terminal has no LED ring

    @property
    def sim(self) -> SimPinFactory | None:
        return self.factory if isinstance(self.factory, SimPinFactory) else None

    def start(self) -> None:
        """Start the pattern and keypad-scan threads (tests drive them step by step instead)."""
        self.scheduler.start()
        self.keypad.start()

    def close(self) -> None:
        """Safe state first (relay de-energised), then stop threads and free the pins."""
        try:
            self.relay.release()
            self.leds.off()
            self.buzzer.off()
            if self.challenge_light is not None:
                self.challenge_light.off()
        finally:
            self.keypad.close()
            self.scheduler.close()
            self.factory.close()

    def __enter__(self) -> Hardware:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_hardware(config: HardwareConfig, clock: Clock, sim: bool = False) -> Hardware:
    factory = pin_factory_from_config(config, clock, sim)
    pins = config.pins
    try:
        scheduler = OutputScheduler(clock)
        relay = GateRelay(  # first, so the gate is in its safe state as early as possible
            factory,
            pins.relay,
            scheduler,
            config.relay_active_high,
            config.relay_pulse_ms,
            config.relay_mode,
        )
        leds = LedBoard(
            factory,
            scheduler,
            pins.led_green,
            pins.led_amber,
            pins.led_red,
            pins.led_prompt,
            config.leds_active_high,
        )
        buzzer = Buzzer(factory, pins.buzzer, scheduler, config.buzzer_active_high, "buzzer")
        keypad = Keypad(
            factory,
            pins.keypad_rows,
            pins.keypad_cols,
            clock,
            config.keypad_debounce_ms,
            config.keypad_scan_interval_ms,
        )
        challenge_light = None
        if pins.challenge_light is not None:
            challenge_light = ChallengeLight(
                factory, pins.challenge_light, scheduler, clock, config.challenge_light_active_high
            )
        passage = None
        if pins.passage is not None:
            passage = PassageSensor(
                factory, pins.passage, clock, config.passage_timeout_s, config.passage_active_low
            )
    except BaseException:
        factory.close()
        raise
    fingers = None
    if isinstance(factory, SimPinFactory):
        fingers = SimKeypad(factory, pins.keypad_rows, pins.keypad_cols)
    return Hardware(
        factory, scheduler, relay, leds, buzzer, keypad, passage, fingers, challenge_light
    )
