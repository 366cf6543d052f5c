"""The demo's terminal: the real pipeline, session, store, keys and (when mosquitto is
installed) the real MQTT link and reference host, on simulated GPIO and a clock the demo
moves frame by frame.

Nothing here decides an outcome: frames go through FacePipeline, the session decides,
effects drive the simulated relay/LEDs and the SQLite ledger, the host answers over MQTT.
The rig only plays the world: it shows frames, presses keys, walks people through the
gate, pulls the network cable, and stands a vending machine next to the terminal: a VMC
at the byte level (device/vending/vmc_machine.py) on one end of a pty, the vending
terminal's real mdb-uart controller on the other.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from device.app import Parts, open_parts, start_net
from device.clock import FakeClock
from device.config import Config, load_config
from device.demo.host_setup import HOST_ID, SHARD_ID, host_keys, reference_host, site_broker
from device.demo.narration import narration
from device.hw.camera.frames import Frame
from device.hw.camera.lighting import Exposure, Presentation, on_fraction
from device.net.config import MqttConfig
from device.net.local_broker import LocalBroker, mosquitto_binary
from device.provisioning import provision
from device.shell.terminal import Terminal
from device.vending.factory import open_controller
from device.vending.port import VendingController
from device.vending.vmc_machine import Customer, VmcMachine
from device.vending.vmc_sim import PtyVmc
from device.vision.templates import template_from_images

log = logging.getLogger("blinkpay.demo")

FPS = 15.0
KEY_STEP_S = 0.03  # keypad scans while a key is held: longer than the 20 ms debounce
HOST_WAIT_S = 15.0  # real seconds to wait for the host over MQTT (authorization, sync)
# The demo's clock holds while the host answers, so a slow machine (CI sharing its cores)
# gets more real time than a terminal would before the offline rules take over.
DEMO_AUTH_TIMEOUT_S = 10.0
DEVICE_ID = "demo-gate-01"
PREFIX = "blinkpay/v1"

Narrate = Callable[[str], None]


class DemoRig:
    def __init__(self, workdir: Path, *, narrate: Narrate, use_broker: bool = True) -> None:
        self.workdir, self.narrate = workdir, narrate
        self.clock = FakeClock()
        self._posted: collections.deque[object] = collections.deque()
        self.events: list[tuple[str, dict[str, Any]]] = []  # what the effects did (observer)
        self.scene_started = self.clock.monotonic()  # narration shows demo time from here
        binary = mosquitto_binary() if use_broker else None
        # started once the site's credentials exist (host_setup.site_broker)
        self.broker = LocalBroker(workdir / "broker", binary) if binary else None
        self.host: Any = None
        self.parts: Parts | None = None
        self._pty: tuple[int, int] | None = None
        self.machine: VmcMachine | None = None
        self.vending: VendingController | None = None
        # what stands in front of the camera, and how it answers the challenge light
        self.presentation: Presentation | None = None
        self.exposure = Exposure(frame_s=1.0 / FPS)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    # -- setup ------------------------------------------------------------------------------
    def _setup(self) -> None:
        host_dir = self.workdir / "host"
        pin_key = host_keys(host_dir)
        mqtt: dict[str, Any] = {"enabled": False, "shard_id": SHARD_ID}
        device_password = None
        if self.broker is not None:
            device_password = site_broker(self.broker, host_dir, DEVICE_ID, PREFIX)
            mqtt.update(
                enabled=True,
                url=self.broker.url,
                backend_public_key_file=str(host_dir / "backend.pub"),
                auth_timeout_s=DEMO_AUTH_TIMEOUT_S,
                reconnect_min_s=0.2,
                reconnect_max_s=1.0,
                tx_retry_s=1.0,
            )
        sections: dict[str, Any] = {
            "device": {
                "id": DEVICE_ID,
                "mode": "turnstile",
                "data_dir": str(self.workdir / "device"),
                "log_format": "text",
            },
            "hardware": {"backend": "sim"},
            "mqtt": mqtt,
            "vending": self._vending_section(),
        }
        provisioned = provision(
            self.workdir / "config.toml", sections, pin_key=pin_key, mqtt_password=device_password
        )
        self.config = load_config(provisioned.config_path, env={})
        self.parts = parts = open_parts(self.config, sim=True, clock=self.clock)
        embedder = parts.pipeline.embedder
        assert embedder is not None
        self.host = self._make_host(host_dir, embedder.version, embedder.dim)
        net_host = None
        if self.broker is not None:
            self.host.start()
            self.host.register_device(
                DEVICE_ID,
                provisioned.public_key_pem.encode(),
                provisioned.box_public_key_pem.encode(),
                self.config.mqtt.shard_id,
            )
            net_host = start_net(parts, self._posted.append)
            if parts.net is None or not parts.net.link.wait_connected(HOST_WAIT_S):
                raise RuntimeError("the terminal could not reach the demo broker")
        self.vending = open_controller(self.config.vending, self.clock)
        self.terminals = {
            mode: parts.terminal(
                self._posted.append,
                net_host,
                self._observe,
                config=_with_mode(self.config, mode),
                vending=self.vending if mode == "vending" else None,
            )
            for mode in ("turnstile", "vending")
        }
        self.terminal = self.terminals["turnstile"]
        self.vending.start()
        self.machine.start()  # type: ignore[union-attr]

    def _vending_section(self) -> dict[str, Any]:
        """The machine on the pty's master end; the terminal opens the slave end, as it
        would open /dev/serial0 (stuffed framing: a pty has no parity bit)."""
        master, slave = os.openpty()
        self._pty = (master, slave)
        self.machine = VmcMachine(PtyVmc(master))
        return {"controller": "mdb-uart", "port": os.ttyname(slave), "framing": "stuffed"}

    def _make_host(self, host_dir: Path, embedder_version: str, dim: int) -> Any:
        mqtt = MqttConfig(url="mqtt://127.0.0.1:1", shard_id=SHARD_ID)
        if self.broker is not None:
            mqtt = MqttConfig(
                url=self.broker.url,
                shard_id=SHARD_ID,
                username=HOST_ID,
                password_file=host_dir / "mqtt.password",
            )
        return reference_host(host_dir, mqtt, embedder_version, dim)

    @property
    def online(self) -> bool:
        return self.broker is not None

    @property
    def challenge(self) -> bool:
        """The terminal has a challenge light: the session runs the illumination challenge."""
        return self.parts is not None and self.parts.hardware.challenge_light is not None

    def close(self) -> None:
        if self.machine is not None:
            self.machine.stop()
            self.machine = None
        if self.vending is not None:
            self.vending.close()
            self.vending = None
        for fd in self._pty or ():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._pty = None
        if self.parts is not None:
            self.parts.close()
            self.parts = None
        if self.host is not None:
            if self.broker is not None:
                self.host.stop()
            else:
                self.host.db.close()
            self.host = None
        if self.broker is not None:
            self.broker.stop()

    # -- the world --------------------------------------------------------------------------
    def use(self, mode: str) -> Terminal:
        self.terminal = self.terminals[mode]
        return self.terminal

    def enrol(self, token: str, images: list[np.ndarray], pin: str) -> float:
        """The operator's app enrols a customer: template by the terminal's own models, the
        account at the host, the signed delta to the terminal. Returns the template's
        self-similarity check (cosine of the first image to the fused template)."""
        assert self.parts is not None
        template = template_from_images(self.parts.pipeline, images)
        self.host.enrol(
            token,
            template.vector,
            shard_id=SHARD_ID,
            pin=pin,
            offline_allowance=1000,
            embedder_version=template.embedder_version,
            publish=self.online,
        )
        shard = self.parts.store.shard
        if self.online:
            deadline = time.monotonic() + HOST_WAIT_S
            while shard.account(token) is None and time.monotonic() < deadline:
                time.sleep(0.02)
        else:
            # No broker: the host's snapshot goes straight to the shard's own apply path
            # (the same parsing, checks and sealing a snapshot over MQTT gets).
            result = shard.apply_snapshot(self.host.shards.snapshot(SHARD_ID))
            if result.outcome != "applied":
                raise RuntimeError(f"snapshot refused: {result.reason} {result.detail}")
        if shard.account(token) is None:
            raise RuntimeError(f"enrolment of {token} never reached the terminal")
        return template.count

    def show(self, rgb: np.ndarray) -> None:
        """One camera frame, 1/FPS after the last, lit as the presentation reflects the
        challenge light (device.hw.camera.lighting)."""
        self.clock.advance(1.0 / FPS)
        now = self.clock.monotonic()
        if self.presentation is not None:
            rgb = self.presentation.render(rgb, now, self._light_on, self.exposure)
        frame = Frame(now, rgb)
        faces = self.terminal.process_frame(frame)
        self.terminal.handle(faces, self.clock.monotonic())
        self.settle()

    def _light_on(self, t0: float, t1: float) -> float:
        """How much of [t0, t1] the simulated challenge light was on (its pin's history)."""
        assert self.parts is not None
        light, sim = self.parts.hardware.challenge_light, self.parts.hardware.sim
        if light is None or sim is None:
            return 0.0
        history = [(t, level == light.active_high) for t, level in sim.history(light.pin)]
        return on_fraction(history, t0, t1)

    def settle(self) -> None:
        """Hand over what was posted (match results, host answers), keys, then a tick."""
        assert self.parts is not None
        hw = self.parts.hardware
        for event in hw.keypad.poll():
            self.terminal.handle(event, self.clock.monotonic())
        for _ in range(100):
            if not self._posted:
                break
            self.terminal.handle(self._posted.popleft(), self.clock.monotonic())
        self.terminal.tick(self.clock.monotonic())
        hw.scheduler.tick()

    def wait(self, seconds: float) -> None:
        """Time passes with nothing new in view (no frame: the camera sees the same)."""
        steps = max(1, round(seconds * FPS))
        for _ in range(steps):
            self.clock.advance(1.0 / FPS)
            self.settle()

    def wait_real(self, done: Callable[[], bool], timeout_s: float = HOST_WAIT_S) -> bool:
        """Wait in real time for the network (host answer, sync); the demo clock holds."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
            self.settle()
        return True

    def press(self, keys: str) -> None:
        assert self.parts is not None and self.parts.hardware.fingers is not None
        fingers = self.parts.hardware.fingers
        for key in keys:
            fingers.press(key)
            for _ in range(3):
                self.clock.advance(KEY_STEP_S)
                self.settle()
            fingers.release(key)
            for _ in range(3):
                self.clock.advance(KEY_STEP_S)
                self.settle()

    def customer_at_machine(self, item: int, price: int, act: str = "vend") -> Customer:
        """The next person the terminal opens a machine session for selects `item` and
        the machine does `act` (vend, jam, ...: device/vending/vmc_machine.py)."""
        assert self.machine is not None
        return self.machine.serve(Customer(item, price, act))  # type: ignore[arg-type]

    def walk_through_gate(self) -> None:
        """The customer passes: the gate's PASS contact closes and opens again."""
        assert self.parts is not None
        sim, pins = self.parts.hardware.sim, self.config.hardware.pins
        if sim is None or pins.passage is None:
            return
        sim.drive_input(pins.passage, False)  # active low: closed to ground
        self.clock.advance(0.2)
        self.settle()
        sim.drive_input(pins.passage, None)
        self.settle()

    def network_down(self) -> None:
        """Pull the cable: the broker stops; wait until the terminal's link has noticed."""
        if self.broker is None or self.parts is None or self.parts.net is None:
            return
        self.broker.stop()
        link = self.parts.net.link
        self.wait_real(lambda: not link.connected, timeout_s=HOST_WAIT_S)

    def network_up(self) -> None:
        if self.broker is not None:
            self.broker.start()

    def relay_pulses(self) -> int:
        assert self.parts is not None and self.parts.hardware.sim is not None
        pin = self.config.hardware.pins.relay
        return len(self.parts.hardware.sim.pulses(pin, self.config.hardware.relay_active_high))

    def relay_energised(self) -> bool:
        assert self.parts is not None
        return self.parts.hardware.relay.energised

    def _observe(self, what: str, details: dict[str, Any]) -> None:
        self.events.append((what, details))
        line = narration(what, details)
        if line:
            self.narrate(f"   {self.clock.monotonic() - self.scene_started:6.2f}s  {line}")


def _with_mode(config: Config, mode: str) -> Config:
    return config.model_copy(update={"device": config.device.model_copy(update={"mode": mode})})
