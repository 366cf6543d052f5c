"""Remote commands and config/set against a real `blinkpay run --sim` process, a real
mosquitto and the reference host: selftest on the running parts, one gate pulse while
idle, config changes applied live or by a clean restart (exit 75, the overlay survives),
a simulated reboot that answers first and exits 75."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from backend.host import PaymentHost
from device.config import load_config, overlay_path
from device.provisioning import provision
from device.remote.loop_hooks import RESTART_EXIT_CODE
from tests.conftest import Broker
from tests.net.conftest import PREFIX, BackendKeys, make_host

pytestmark = pytest.mark.mqtt

DEVICE = "gate-r"
WAIT_S = 60.0  # model loading on a busy 2-core machine; never a timing assertion


@dataclass
class Watcher:
    """A plain subscriber to everything the terminal publishes."""

    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    client: mqtt.Client | None = None

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            return
        with self.arrived:
            self.seen.append((message.topic, payload))
            self.arrived.notify_all()

    def wait_for(
        self, predicate: Callable[[str, dict[str, Any]], bool], timeout: float = WAIT_S
    ) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for topic, payload in self.seen:
                    if predicate(topic, payload):
                        return payload
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.arrived.wait(left)


@pytest.fixture
def watcher(broker: Broker) -> Iterator[Watcher]:
    watcher = Watcher()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="remote-watcher")
    client.on_message = watcher.on_message
    client.connect(broker.host, broker.port)
    client.subscribe(f"{PREFIX}/dev/{DEVICE}/#", qos=1)
    client.loop_start()
    watcher.client = client
    yield watcher
    client.loop_stop()
    client.disconnect()


@pytest.fixture
def host(broker: Broker, backend_keys: BackendKeys, tmp_path: Path) -> Iterator[PaymentHost]:
    host = make_host(broker.url, backend_keys, tmp_path / "host").start()
    yield host
    host.stop()


def terminal_config(broker: Broker, keys: BackendKeys, folder: Path, host: PaymentHost) -> Path:
    """Provisioned, and registered with the host (its results and reports are signed)."""
    sections = {
        "device": {"id": DEVICE, "data_dir": str(folder / "data"), "log_format": "json"},
        "hardware": {"backend": "sim", "camera": {"source": "synthetic", "fps": 10.0}},
        "mqtt": {
            "url": broker.url,
            "backend_public_key_file": str(keys.public_key_file),
            "telemetry_interval_s": 1.0,
            "keepalive_s": 5,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
        },
    }
    path = folder / "config.toml"
    made = provision(path, sections)
    host.register_device(
        DEVICE, made.public_key_pem.encode(), made.box_public_key_pem.encode() or None
    )
    return path


class Process:
    def __init__(self, config: Path, watcher: Watcher) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BLINKPAY_", "NOTIFY_"))}
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "device.cli", "run", "--sim", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.watcher = watcher
        # Online comes after the SUBSCRIBE packets on the same connection, so once a
        # subscriber sees this boot's `online`, commands sent from now on are delivered.
        before = {p.get("boot_id") for t, p in watcher.seen if t.endswith("/status")}
        online = watcher.wait_for(
            lambda t, p: (
                t.endswith("/status") and p["state"] == "online" and p["boot_id"] not in before
            )
        )
        assert online is not None, self.stderr()
        boot = online["boot_id"]
        # ... and a telemetry report with frames: the main loop and the camera are running.
        running = watcher.wait_for(
            lambda t, p: (
                t.endswith("/telemetry") and p.get("boot_id", boot) == boot and p.get("fps", 0) >= 5
            )
        )
        assert running is not None, self.stderr()

    def stderr(self) -> str:
        if self.popen.poll() is None:
            self.popen.kill()
        return self.popen.communicate(timeout=10)[1].decode()[-4000:]

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


def command(host: PaymentHost, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    request_id = host.send_command(DEVICE, name, args)

    def answered(h: PaymentHost) -> bool:
        return any(r["request_id"] == request_id for r in h.command_results)

    assert host.wait_for(answered, WAIT_S), f"no answer to {name}"
    return next(r for r in host.command_results if r["request_id"] == request_id)


def config_state(host: PaymentHost, version: int, config: dict[str, Any]) -> dict[str, Any]:
    host.config_states.clear()
    assert host.send_config(DEVICE, version, config)
    assert host.wait_for(lambda h: any(s["version"] == version for s in h.config_states), WAIT_S), (
        f"no config/state for version {version}"
    )
    return next(s for s in host.config_states if s["version"] == version)


def test_selftest_gate_test_and_live_config_on_a_running_terminal(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, host: PaymentHost, watcher: Watcher
) -> None:
    process = Process(terminal_config(broker, backend_keys, tmp_path, host), watcher)
    try:
        selftest = command(host, "selftest")
        checks = {c["name"]: c for c in selftest["result"]["checks"]}
        failed = [c for c in checks.values() if not c["ok"]]
        assert selftest["ok"] and not failed, (selftest["detail"], failed)
        assert {"hw.relay", "hw.camera", "store.integrity", "mqtt.broker"} <= set(checks)
        assert "stalls" in checks["hw.camera"]["detail"]  # the running capture, not a reopen
        assert any(name.startswith("models.") for name in checks)

        pulsed = command(host, "gate-test", {"pulse_ms": 300})
        assert pulsed["ok"] and pulsed["result"] == {"pulse_ms": 300}, pulsed
        event = watcher.wait_for(lambda t, p: t.endswith("/events") and p["type"] == "gate_test")
        assert event is not None and event["outcome"] == "pulsed"
        too_long = command(host, "gate-test", {"pulse_ms": 60_000})
        assert not too_long["ok"] and "pulse_ms" in too_long["detail"]

        live = config_state(host, 1, {"match": {"threshold": 0.96}})
        assert live["status"] == "applied" and live["reason"] == "applied live", live
        bad = config_state(host, 2, {"payment": {"fare": True}})
        assert bad["status"] == "refused" and "whole number" in bad["reason"], bad
        forbidden = config_state(host, 3, {"device": {"id": "other"}, "mqtt": {"url": "x"}})
        assert forbidden["status"] == "refused", forbidden
        assert "device.id cannot change remotely" in forbidden["reason"]
        assert process.popen.poll() is None  # nothing here restarts the terminal
    finally:
        process.close()


def test_config_needing_a_restart_and_a_simulated_reboot(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, host: PaymentHost, watcher: Watcher
) -> None:
    config = terminal_config(broker, backend_keys, tmp_path, host)
    process = Process(config, watcher)
    try:
        state = config_state(host, 5, {"payment": {"fare": 300}})
        assert state["status"] == "applied" and "restart" in state["reason"], state
        assert process.popen.wait(WAIT_S) == RESTART_EXIT_CODE, process.stderr()
        data_dir = tmp_path / "data"
        overlay = json.loads(overlay_path(data_dir).read_text())
        assert overlay == {"version": 5, "config": {"payment": {"fare": 300}}}
        assert load_config(config, env={}).payment.fare == 300  # what the restart runs with
        assert (overlay_path(data_dir).stat().st_mode & 0o777) == 0o600

        # Sent while it is down: the broker keeps it for the terminal's session, which gets
        # it at its first connect, before its handlers are in place; it is held, then run.
        queued = host.send_command(DEVICE, "gate-test")
        process = Process(config, watcher)  # systemd's part: start it again
        assert host.wait_for(
            lambda h: any(r["request_id"] == queued for r in h.command_results), WAIT_S
        )
        answer = next(r for r in host.command_results if r["request_id"] == queued)
        assert answer["ok"], answer
        replay = config_state(host, 5, {"payment": {"fare": 400}})
        assert replay["status"] == "refused" and "not above" in replay["reason"]

        reboot = command(host, "reboot")  # the answer arrives before the process goes
        assert reboot["ok"] and reboot["result"] == {"action": "restart"}, reboot
        assert "simulated" in reboot["detail"]
        assert process.popen.wait(WAIT_S) == RESTART_EXIT_CODE, process.stderr()
    finally:
        process.close()
