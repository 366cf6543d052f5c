"""The real `blinkpay run --sim` in vending mode: its camera shows an enrolled customer who
looks and blinks, again and again (a looping frame folder through the real vision
pipeline); its mdb-uart controller is on one end of a pty, a vending machine (VmcMachine)
on the other; a real mosquitto and the reference host settle the money.

Ten customers through the whole process, then one whose vend is under way when the
terminal is SIGKILLed: it is restarted, and nothing is charged twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.config import HostConfig
from backend.host import PaymentHost
from device.demo.portraits import close_eyes, load_portrait
from device.provisioning import provision
from device.vending.vmc_machine import Customer, VmcMachine
from device.vending.vmc_sim import PtyVmc
from device.vision.config import VisionConfig
from device.vision.pipeline import FacePipeline
from device.vision.templates import template_from_images
from tests.conftest import Broker
from tests.net.conftest import SHARD, BackendKeys, backend_keys, fast_mqtt
from tests.vending.vend_stack import BALANCE, TOKEN, open_pty, register

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]
__all__ = ["backend_keys"]  # the fixture, shared with the MQTT tests

WAIT_S = 60.0  # a bound for one customer on a loaded machine (the loop repeats meanwhile)
PRICES = (150, 250, 120, 380, 990, 150, 250, 120, 1500, 150)


def write_clip(folder: Path) -> tuple[np.ndarray, str]:
    """A looping clip: the customer looks, blinks, looks, then leaves the frame; returns
    the template the operator's app would enrol and the embedder version."""
    pipeline = FacePipeline.from_config(VisionConfig())
    face = load_portrait("collins")
    found = pipeline.process(face, 0.0, track=False, embed=False)
    assert found, "no face in the demo portrait"
    blink = [close_eyes(face, found[0].landmarks, c) for c in (0.5, 0.95, 1.0, 1.0, 0.5)]
    empty = np.full_like(face, 128)
    frames = [face] * 8 + blink + [face] * 20 + [empty] * 20
    folder.mkdir()
    for index, rgb in enumerate(frames):
        cv2.imwrite(str(folder / f"frame{index:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (folder / "fps.txt").write_text("15")
    template = template_from_images(pipeline, [face])
    return template.vector, template.embedder_version


def start_host(url: str, keys: BackendKeys, folder: Path, version: str, dim: int) -> PaymentHost:
    config = HostConfig(
        host_id="host-a",
        mqtt=fast_mqtt(url),
        db_path=folder / "host.db",
        signing_key_file=keys.signing_key_file,
        pin_key_file=keys.pin_key_file,
        embedder_version=version,
        dim=dim,
    )
    return PaymentHost(config).start()


def sections(tmp: Path, url: str, keys: BackendKeys, clip: Path, port: str) -> dict:
    return {
        "device": {"id": "vend-02", "mode": "vending", "data_dir": str(tmp / "data")},
        "hardware": {
            "backend": "sim",
            "camera": {"source": "file", "path": str(clip), "file_loop": True, "fps": 15.0},
            # a recorded clip cannot answer the illumination challenge (it is a replay):
            # this test is about the money, docs/liveness.md about the challenge
            "pins": {"challenge_light": False},
        },
        "mqtt": fast_mqtt(url, backend_public_key_file=str(keys.public_key_file)),
        # no ring (above): PIN-less face payment is this terminal's explicit choice
        "session": {"cooldown_s": 0.2, "select_timeout_s": 2.0, "pinless_without_ring": True},
        "payment": {"max_per_user_day": 1_000_000, "velocity_max": 100_000},
        "vending": {"controller": "mdb-uart", "port": port, "framing": "stuffed"},
    }


def spawn(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """`blinkpay run --sim`, its log in a file (a pipe nobody reads fills up and blocks the
    terminal's next write: it would then hang, not stop, on SIGTERM)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLINKPAY_", "NOTIFY_"))}
    command = [sys.executable, "-m", "device.cli", "run", "--sim", "--config", str(config)]
    with log.open("ab") as sink:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def until(done, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_run_vends_through_the_face_path_and_a_sigkill_charges_nothing_twice(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path
) -> None:
    vector, version = write_clip(tmp_path / "clip")
    host = start_host(broker.url, backend_keys, tmp_path / "host", version, len(vector))
    pty = open_pty()
    machine = VmcMachine(PtyVmc(pty.master)).start()
    made = provision(
        tmp_path / "config.toml",
        sections(tmp_path, broker.url, backend_keys, tmp_path / "clip", pty.path),
        pin_key=backend_keys.pin_key,
    )
    register(host, "vend-02", made)
    host.enrol(
        TOKEN,
        vector,
        shard_id=SHARD,
        daily_limit=BALANCE,
        balance=BALANCE,
        embedder_version=version,
    )
    log = tmp_path / "terminal.log"
    process = spawn(made.config_path, log)
    customers: list[Customer] = []
    try:
        for index, price in enumerate(PRICES):
            customer = machine.serve(Customer(20 + index, price, "jam" if index == 3 else "vend"))
            assert customer.done.wait(WAIT_S), (index, customer, machine.why_reset)
            customers.append(customer)
        # mid-vend: the machine has the approval and is dispensing when the terminal dies
        held = machine.serve(Customer(40, 250, "hold"))
        assert until(lambda: held.approved is not None, WAIT_S), held
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        held.release.set()
        assert held.done.wait(WAIT_S)
        customers.append(held)
        process = spawn(made.config_path, log)  # restart: the ledger recovers, the link resyncs
        after = machine.serve(Customer(41, 120, "vend"))
        assert after.done.wait(WAIT_S * 2), (after, machine.why_reset)
        customers.append(after)
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(30) == 0, tail(log)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no stop 30 s after SIGTERM:\n{tail(log)}") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        machine.stop()
        pty.close()
    try:
        vended = [c for c in customers if c.vended]
        charged = sum(c.price for c in vended)
        assert held in vended and len(vended) == len(PRICES) + 1  # 9 sales, held, after
        assert host.wait_for(lambda h: h.accounts.balance(TOKEN) == BALANCE - charged, 30), (
            host.accounts.balance(TOKEN),
            BALANCE - charged,
        )
        rows = host.accounts.transactions()
        approved = [r for r in rows if r["status"] == "approved"]
        assert len(approved) == len(vended)
        assert len({r["tx_id"] for r in rows}) == len(rows)  # one row per transaction
    finally:
        host.stop()
