"""`blinkpay run --sim` on a real broker: it says "online" (retained), sends telemetry, and
on SIGTERM says "offline" with reason shutdown before it exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from device.crypto.signing import public_pem
from device.provisioning import provision

pytestmark = pytest.mark.mqtt


def test_run_reports_online_and_offline(broker, tmp_path: Path, blinkpay_command) -> None:
    backend_key = tmp_path / "backend.pub"
    backend_key.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    sections = {
        "device": {"id": "gate-mqtt", "data_dir": str(tmp_path / "data")},
        "hardware": {"backend": "sim", "camera": {"source": "synthetic", "fps": 10.0}},
        "mqtt": {
            "url": broker.url,
            "backend_public_key_file": str(backend_key),
            "telemetry_interval_s": 1.0,
        },
    }
    provision(tmp_path / "config.toml", sections)
    seen: list[tuple[str, dict]] = []
    arrived = threading.Condition()

    def on_message(client, userdata, message) -> None:
        with arrived:
            seen.append((message.topic, json.loads(message.payload)))
            arrived.notify_all()

    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-watcher")
    watcher.on_message = on_message
    watcher.connect(broker.host, broker.port)
    watcher.subscribe("blinkpay/v1/dev/gate-mqtt/#", qos=1)
    watcher.loop_start()

    def wait_for(predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with arrived:
            while not any(predicate(t, p) for t, p in seen):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                arrived.wait(left)
        return True

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLINKPAY_", "NOTIFY_"))}
    process = subprocess.Popen(
        [*blinkpay_command, "run", "--sim", "--config", str(tmp_path / "config.toml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        status = "blinkpay/v1/dev/gate-mqtt/status"
        telemetry = "blinkpay/v1/dev/gate-mqtt/telemetry"
        assert wait_for(lambda t, p: t == status and p["state"] == "online", 60)
        assert wait_for(lambda t, p: t == telemetry and p.get("fps", 0) > 0, 20), seen
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert wait_for(
            lambda t, p: t == status and p["state"] == "offline" and p.get("reason") == "shutdown",
            5,
        ), seen
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        watcher.loop_stop()
        watcher.disconnect()
