"""`blinkpay provision`: keys only the service user can read, a config that validates,
and no silent replacement of existing keys."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device.config import load_config
from device.crypto.signing import public_pem
from device.errors import BlinkpayError
from device.provisioning import Owner, provision, to_toml


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


def test_provision_again_keeps_the_keys_and_force_replaces_them(
    blinkpay_command: list[str], tmp_path: Path
) -> None:
    assert _provision(blinkpay_command, tmp_path).returncode == 0
    keys = tmp_path / "data" / "keys"
    before = {name: (keys / name).read_bytes() for name in ("data.key", "device_ed25519.pem")}
    again = _provision(blinkpay_command, tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["keys_kept"] == "data key, signing key, PIN key, X25519 key"
    assert {name: (keys / name).read_bytes() for name in before} == before
    # Another device id or shard is another terminal: refused without --force, warned with.
    for change in (["--device-id", "gate-8"], ["--shard-id", "north"]):
        other = _provision(blinkpay_command, tmp_path, *change)
        assert other.returncode == 1 and "would change its" in other.stderr, other.stderr
        assert "--force" in other.stderr
    assert load_config(tmp_path / "etc" / "config.toml", env={}).device.id == "gate-7"
    forced = _provision(blinkpay_command, tmp_path, "--device-id", "gate-8", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "warning: re-provisioned with another identity (device id gate-7 -> gate-8)" in (
        forced.stderr
    )
    assert load_config(tmp_path / "etc" / "config.toml", env={}).device.id == "gate-8"
    assert (keys / "data.key").read_bytes() != before["data.key"]  # no database yet


def test_public_keys_are_files_and_the_text_output_names_them(
    blinkpay_command: list[str], tmp_path: Path
) -> None:
    result = _provision(blinkpay_command, tmp_path)
    summary = json.loads(result.stdout)
    keys = tmp_path / "data" / "keys"
    signing, box = keys / "device_ed25519.pub.pem", keys / "device_x25519.pub.pem"
    assert summary["device_public_key_file"] == str(signing)
    assert signing.read_text() == summary["device_public_key"]
    assert box.read_text() == summary["device_x25519_public_key"]
    assert stat.S_IMODE(signing.stat().st_mode) == 0o644
    text = _provision(blinkpay_command, tmp_path)
    text = subprocess.run(
        [arg for arg in text.args if arg != "--json"], capture_output=True, text=True, check=False
    )
    assert "BEGIN PUBLIC KEY" not in text.stdout
    assert f"device add gate-7 {signing} --x25519 {box} --shard default" in text.stdout


@pytest.mark.parametrize("option", ["--backend-key", "--key-file", "--cert-file", "--ca-file"])
def test_a_file_that_does_not_exist_fails_provision(
    blinkpay_command: list[str], tmp_path: Path, option: str
) -> None:
    missing = tmp_path / "nowhere.pem"
    result = _provision(blinkpay_command, tmp_path, option, str(missing))
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith(f"{option} {missing}: no such file; give the path of the file")
    )
    assert not (tmp_path / "data").exists()


def test_a_tls_key_gone_after_provision_fails_config_check(
    blinkpay_command: list[str], tmp_path: Path
) -> None:
    cert, key = tmp_path / "gate.pem", tmp_path / "gate.key"
    cert.write_text("cert"), key.write_text("key")
    result = _provision(
        blinkpay_command, tmp_path, "--broker", "mqtts://broker.example:8883",
        "--cert-file", str(cert), "--key-file", str(key),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    key.unlink()
    config = tmp_path / "etc" / "config.toml"
    check = subprocess.run(
        [*blinkpay_command, "config", "check", str(config)], capture_output=True, text=True
    )
    assert check.returncode == 1
    assert f"mqtt.key_file {key}: no such file; copy the key of the client certificate" in (
        check.stderr
    )
    # provision says the same, in one line, and writes nothing
    again = _provision(blinkpay_command, tmp_path, "--broker", "mqtts://broker.example:8883")
    assert again.returncode == 1 and f"mqtt.key_file {key}: no such file" in again.stderr


def test_force_never_replaces_the_data_key_of_a_database(tmp_path: Path) -> None:
    from device.store.terminal_store import open_store

    sections = {"device": {"id": "g-2", "data_dir": str(tmp_path / "data")},
                "mqtt": {"enabled": False}}  # fmt: skip
    first = provision(tmp_path / "c.toml", sections)
    open_store(first.config.store, first.config.device.data_dir).close()
    key = (tmp_path / "data" / "keys" / "data.key").read_bytes()
    forced = provision(tmp_path / "c.toml", sections, force=True)
    assert "data key" in forced.kept and "signing key" in forced.made
    assert (tmp_path / "data" / "keys" / "data.key").read_bytes() == key


def test_settings_merge_into_an_existing_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[hardware]\nbackend = "rpi"\n[vision]\nthreads = 3\n')
    sections = {"device": {"id": "g-3", "data_dir": str(tmp_path / "data")}}
    result = provision(config, sections)
    assert result.config.vision.threads == 3 and result.config.device.id == "g-3"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640


def test_a_refusal_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "config.toml").mkdir()
    sections = {"device": {"id": "g-4", "data_dir": str(tmp_path / "data")}}
    with pytest.raises(BlinkpayError, match="is a directory"):
        provision(tmp_path / "config.toml", sections)
    assert not (tmp_path / "data").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_root_provisions_keys_for_the_service_user(tmp_path: Path) -> None:
    owner = Owner.named("nobody")
    sections = {"device": {"id": "g-5", "data_dir": str(tmp_path / "data")}}
    provision(tmp_path / "etc" / "config.toml", sections, owner=owner)
    for path in (tmp_path / "data", *(tmp_path / "data" / "keys").iterdir()):
        assert (path.stat().st_uid, path.stat().st_gid) == (owner.uid, owner.gid), path
    config = (tmp_path / "etc" / "config.toml").stat()
    assert (config.st_uid, config.st_gid, stat.S_IMODE(config.st_mode)) == (0, owner.gid, 0o640)
    again = provision(tmp_path / "etc" / "config.toml", sections, owner=owner)  # idempotent
    assert again.made == [] and len(again.kept) == 4  # data, signing, PIN, X25519


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
