"""`blinkpay provision`: keys only the service user can read, a config that validates,
and no silent replacement of existing keys."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.config import load_config
from device.crypto.signing import public_pem
from device.errors import BlinkpayError
from device.provisioning import provision, to_toml


def _provision(blinkpay_command: list[str], tmp_path: Path, *extra: str):
    return subprocess.run(
        [
            *blinkpay_command,
            "provision",
            "--config-out",
            str(tmp_path / "etc" / "config.toml"),
            "--data-dir",
            str(tmp_path / "data"),
            "--device-id",
            "gate-7",
            "--sim",
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def test_provision_writes_private_keys_and_a_valid_config(
    blinkpay_command: list[str], tmp_path: Path
) -> None:
    backend_key = tmp_path / "host.pub"
    backend_key.write_bytes(public_pem(Ed25519PrivateKey.generate().public_key()))
    result = _provision(
        blinkpay_command,
        tmp_path,
        "--broker",
        "mqtts://broker.example:8883",
        "--backend-key",
        str(backend_key),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["device_id"] == "gate-7"
    assert summary["device_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    config = load_config(tmp_path / "etc" / "config.toml", env={})
    assert config.device.id == "gate-7" and config.mqtt.url == "mqtts://broker.example:8883"
    keys = tmp_path / "data" / "keys"
    for name in ("data.key", "device_ed25519.pem", "pin.key"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    check = subprocess.run(
        [*blinkpay_command, "config", "check", str(tmp_path / "etc" / "config.toml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_provision_refuses_to_replace_keys_without_force(
    blinkpay_command: list[str], tmp_path: Path
) -> None:
    assert _provision(blinkpay_command, tmp_path).returncode == 0
    key = (tmp_path / "data" / "keys" / "data.key").read_bytes()
    again = _provision(blinkpay_command, tmp_path)
    assert again.returncode != 0
    assert "--force" in again.stderr and "Traceback" not in again.stderr
    assert (tmp_path / "data" / "keys" / "data.key").read_bytes() == key
    forced = _provision(blinkpay_command, tmp_path, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "data" / "keys" / "data.key").read_bytes() != key


def test_invalid_settings_are_refused_before_any_key_is_made(tmp_path: Path) -> None:
    sections = {"device": {"id": "bad id!", "data_dir": str(tmp_path / "data")}}
    with pytest.raises(BlinkpayError, match=r"device\.id"):
        provision(tmp_path / "config.toml", sections)
    assert not (tmp_path / "data").exists()


def test_toml_writer_round_trips_nested_tables(tmp_path: Path) -> None:
    sections = {
        "device": {"id": "g-1", "data_dir": str(tmp_path), "mode": "vending"},
        "hardware": {"backend": "sim", "relay_pulse_ms": 400, "camera": {"fps": 12.5}},
        "mqtt": {"enabled": False},
    }
    path = tmp_path / "c.toml"
    path.write_text(to_toml(sections))
    config = load_config(path, env={})
    assert config.device.mode == "vending"
    assert config.hardware.relay_pulse_ms == 400 and config.hardware.camera.fps == 12.5
    assert config.mqtt.enabled is False
