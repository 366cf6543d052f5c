"""A site as `blinkpay-host` sets it up: host keys, terminals registered on two shards, and
mosquitto running the configuration `blinkpay-host broker-config` wrote."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.cli import main
from device.crypto.signing import public_pem
from tests.conftest import Broker, free_port, mosquitto_available, start_mosquitto
from tests.net.conftest import backend_keys, pki  # noqa: F401  (host keys, the test CA)

PREFIX = "blinkpay/v1"


@dataclass
class Site:
    broker: Broker
    host_toml: Path
    config_dir: Path
    host_user: str
    host_password: str
    passwords: dict[str, str]  # terminal device id -> its broker password
    shards: dict[str, str]  # terminal device id -> its shard


def host_cli(*argv: str) -> int:
    return main(list(argv))


def write_host_toml(folder: Path, port: int) -> Path:
    assert host_cli("keys", str(folder)) == 0
    path = folder / "host.toml"
    path.write_text(
        'host_id = "host-a"\n'
        'db_path = "host.db"\n'
        "[mqtt]\n"
        f'url = "mqtt://127.0.0.1:{port}"\n'
        'shard_id = "shard-a"\n'
        'username = "host-a"\n'
        'password_file = "host.mqtt-password"\n'
    )
    return path


def register(host_toml: Path, folder: Path, device_id: str, shard: str) -> str:
    """`device add ID PUBKEY --shard S`: the terminal's new broker password."""
    pub = folder / f"{device_id}.pub"
    pub.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    argv = ("device", "add", "--config", str(host_toml), device_id, str(pub), "--shard", shard)
    assert host_cli(*argv) == 0
    return (folder / f"{device_id}.mqtt-password").read_text().strip()


@pytest.fixture
def site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Site]:
    if not mosquitto_available():
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    port = free_port()
    host_toml = write_host_toml(tmp_path / "host", port)
    shards = {"gate-a": "shard-a", "gate-b": "shard-b"}
    passwords = {dev: register(host_toml, tmp_path, dev, shard) for dev, shard in shards.items()}
    # Not under pytest's 0700 tree: mosquitto, started as root, reads as its own user.
    config_dir = Path(tempfile.mkdtemp(prefix="blinkpay-broker-"))
    try:
        capsys.readouterr()
        assert host_cli("broker-config", "--config", str(host_toml), str(config_dir)) == 0
        written = json.loads(capsys.readouterr().out)
        assert written["host_user"] == "host-a" and written["host_password"] == "new"
        host_password = (tmp_path / "host" / "host.mqtt-password").read_text().strip()
        broker = start_mosquitto(config_dir / "mosquitto.conf", port)
        try:
            yield Site(broker, host_toml, config_dir, "host-a", host_password, passwords, shards)
        finally:
            broker.stop()
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)
