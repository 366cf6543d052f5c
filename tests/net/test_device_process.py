"""The terminal's network side as a real process (`blinkpay net`): SIGKILL it and a
separate mosquitto_sub sees the retained status turn `offline` (the last will); SIGTERM
instead publishes `offline` with reason shutdown."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from device.config import load_config
from device.net import schemas
from device.store.keys import provision_keys
from device.store.terminal_store import store_key_paths
from tests.conftest import Broker
from tests.net.conftest import PREFIX, BackendKeys
from tests.net.test_e2e import wait_until

pytestmark = pytest.mark.mqtt

STATUS = f"{PREFIX}/dev/gate-01/status"


def device_config(broker: Broker, keys: BackendKeys, folder: Path) -> Path:
    """A provisioned data dir and the TOML file a terminal would have."""
    data_dir = folder / "data"
    path = folder / "blinkpay.toml"
    path.write_text(
        f'[device]\nid = "gate-01"\ndata_dir = "{data_dir}"\nlog_format = "text"\n'
        f'[mqtt]\nurl = "{broker.url}"\nkeepalive_s = 5\n'
        f'backend_public_key_file = "{keys.public_key_file}"\n'
    )
    config = load_config(path)
    provision_keys(store_key_paths(config.store, config.device.data_dir))
    return path


def retained_status(broker: Broker) -> dict:
    """What a dashboard connecting now is told: mosquitto_sub, a process of its own."""
    binary = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    out = subprocess.run(
        [binary, "-h", broker.host, "-p", str(broker.port), "-t", STATUS, "-C", "1", "-W", "5"],
        capture_output=True,
        timeout=10,
        check=True,
    ).stdout
    payload = json.loads(out)
    schemas.check("DeviceStatus", payload)
    return payload


def start_device(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "device.cli", "net", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_status_goes_offline_when_the_device_process_dies(
    broker: Broker, backend_keys: BackendKeys, tmp_path: Path, how: str
) -> None:
    device = start_device(device_config(broker, backend_keys, tmp_path))
    try:
        online: dict = {}

        def is_online() -> bool:
            assert device.poll() is None, device.stderr.read().decode()  # type: ignore[union-attr]
            try:
                online.update(retained_status(broker))
            except subprocess.CalledProcessError:  # nothing retained yet
                return False
            return online["state"] == "online"

        assert wait_until(is_online, 20), "the device never announced itself"
        if how == "sigkill":
            device.send_signal(signal.SIGKILL)
        else:
            device.send_signal(signal.SIGTERM)
        assert device.wait(10) in (0, -signal.SIGKILL)
        assert wait_until(lambda: retained_status(broker)["state"] == "offline", 10)
        offline = retained_status(broker)
        assert offline["boot_id"] == online["boot_id"]
        assert offline["reason"] == ("lost" if how == "sigkill" else "shutdown")
    finally:
        if device.poll() is None:
            device.kill()
            device.wait(5)
