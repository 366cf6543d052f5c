"""The vending stack for end-to-end tests: a vending machine (VmcMachine) on one end of a
pty, the terminal's real mdb-uart controller on the other, the terminal's shell, session,
store and MQTT link, a real mosquitto and the reference host.

The face step is injected at the shell boundary (FaceSeen, BlinkDetected and the match
answer posted to the main loop, as the vision thread and the 1:N search would): the
vision pipeline is not what these tests count, and 200 vends through it would not fit
the time a CI run has. tests/vending/test_vend_process.py runs the real `blinkpay run`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.host import PaymentHost
from device.app import load_pin_key, start_net_service
from device.clock import SystemClock
from device.config import Config, load_config
from device.core.events import BlinkDetected, FaceSeen, MatchResult, RequestMatch
from device.core.match import MatchDecision
from device.crypto.signing import load_signing_key
from device.hw.devices import open_hardware
from device.notify import Notifier
from device.provisioning import Provisioned, provision
from device.shell.host import NetHost
from device.shell.loop import MainLoop
from device.shell.terminal import Terminal
from device.store.terminal_store import Store, open_store
from device.vending.factory import open_controller
from device.vending.vmc_machine import VmcMachine
from device.vending.vmc_sim import PtyVmc
from tests.net.conftest import DIM, EMBEDDER, SHARD, BackendKeys, fast_mqtt

TOKEN = "cust-vend"
BALANCE = 1_000_000
OFFLINE_ALLOWANCE = 5_000


def vending_sections(data_dir: Path, url: str, keys: BackendKeys, port: str) -> dict[str, Any]:
    """Short timeouts so the timeout cases take a second, not half a minute."""
    return {
        "device": {"id": "vend-01", "mode": "vending", "data_dir": str(data_dir)},
        # faces are injected: no camera to play the illumination challenge to
        "hardware": {"backend": "sim", "pins": {"challenge_light": False}},
        # the host's answer (or the offline rules) well inside the reader's limit below
        "mqtt": fast_mqtt(
            url, backend_public_key_file=str(keys.public_key_file), auth_timeout_s=1.0
        ),
        "session": {
            "pinless_without_ring": True,  # no ring here: the operator's explicit choice
            "face_frames": 1,
            "cooldown_s": 0.05,
            "select_timeout_s": 1.0,
            "vend_timeout_s": 1.0,
        },
        "payment": {"max_per_user_day": 1_000_000, "velocity_max": 100_000},
        "vending": {
            "controller": "mdb-uart",
            "port": port,
            "framing": "stuffed",
            "max_response_time_s": 3,  # the reader denies on its own after 2 s
        },
    }


@dataclass
class Pty:
    master: int
    slave: int

    @property
    def path(self) -> str:
        return os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def open_pty() -> Pty:
    master, slave = os.openpty()
    return Pty(master, slave)


def enrol(host: PaymentHost, vector: Any) -> None:
    host.enrol(
        TOKEN,
        vector,
        shard_id=SHARD,
        daily_limit=BALANCE,
        offline_allowance=OFFLINE_ALLOWANCE,
        balance=BALANCE,
        embedder_version=EMBEDDER,
    )


class Stack:
    """One terminal process's worth of parts, in this process, main loop on a thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.clock = SystemClock()
        self.loop = MainLoop(self.clock, Notifier(env={}), tick_s=0.01)
        data_dir = Path(config.device.data_dir)
        self.store: Store = open_store(config.store, data_dir, EMBEDDER, DIM, SHARD)
        self.hardware = open_hardware(config.hardware, self.clock, True)
        self.net = start_net_service(config, self.store)
        self.controller = open_controller(config.vending, self.clock)
        self.terminal = Terminal(
            config,
            pipeline=None,  # type: ignore[arg-type]  # faces are injected, never computed
            store=self.store,
            hardware=self.hardware,
            clock=self.clock,
            signing_key=load_signing_key(data_dir / config.store.signing_key_file),
            pin_key=load_pin_key(config),
            post=self.loop.post,
            host=NetHost(self.net, self.loop.post, self.clock),
            vending=self.controller,
        )
        self.terminal.executor.match = self._match
        self.controller.start()
        self._thread = threading.Thread(
            target=self.loop.run, args=(self.terminal.handle, self.terminal.tick), daemon=True
        )
        self._thread.start()

    def present(self, track: int) -> None:
        """The enrolled customer looks at the camera and blinks (a new track each time)."""
        now = self.clock.monotonic()
        self.loop.post(FaceSeen(now, track, True))
        self.loop.post(BlinkDetected(now, track))

    def _match(self, request: RequestMatch) -> None:
        decision = MatchDecision("match", TOKEN, 0.99, 0.5, (TOKEN,), "injected")
        account = self.terminal.account(TOKEN)
        accounts = {} if account is None else {TOKEN: account}
        self.loop.post(MatchResult(self.clock.monotonic(), request.track_id, decision, accounts))

    def describe(self) -> dict[str, object]:
        """For a failure message: where the session, the driver and the reader are."""
        device = getattr(self.controller, "device", None)
        driver = self.terminal.vending
        return {
            "session": self.terminal.session.state.value,
            "driver_open": None if driver is None else driver.open,
            "reader": None if device is None else device.state,
            "stats": self.controller.stats(),
        }

    @property
    def idle(self) -> bool:
        return self.terminal.session.state.value == "idle"

    def close(self) -> None:
        self.loop.request_stop("test")
        self._thread.join(5.0)
        self.controller.close()
        self.net.stop()
        self.hardware.close()
        self.store.close()


def make_stack(tmp: Path, url: str, keys: BackendKeys, pty: Pty) -> tuple[Stack, Provisioned]:
    """Provision a vending terminal on this pty; returns it and what provisioning made (the
    keys the host registers)."""
    sections = vending_sections(tmp / "data", url, keys, pty.path)
    provisioned = provision(tmp / "config.toml", sections, pin_key=keys.pin_key)
    return Stack(load_config(provisioned.config_path, env={})), provisioned


def register(host: PaymentHost, device_id: str, provisioned: Provisioned) -> None:
    """The host checks the terminal's signatures and seals its shard to it."""
    host.register_device(
        device_id,
        provisioned.public_key_pem.encode(),
        provisioned.box_public_key_pem.encode(),
        SHARD,
    )


def machine_on(pty: Pty) -> VmcMachine:
    return VmcMachine(PtyVmc(pty.master)).start()
