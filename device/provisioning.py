"""Provisioning a terminal: device keys, the PIN key and the config file, in one step.

`blinkpay provision` and the demo's throw-away terminals both call `provision`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from device.config import Config, ConfigError, config_from_mapping
from device.crypto.signing import (
    KeyFileError,
    load_public_key,
    load_signing_key,
    public_key_pem,
    read_private_file,
    write_private_file,
)
from device.crypto.template_box import box_public_pem, generate_box_key, load_box_key
from device.errors import BlinkpayError
from device.store.keys import load_data_key, provision_keys
from device.store.terminal_store import store_key_paths

PIN_KEY_BYTES = 32  # AES-256 for the ISO 9564 format 4 PIN block


@dataclass(frozen=True)
class Provisioned:
    config_path: Path
    config: Config
    public_key_pem: str
    pin_key_file: Path
    box_public_key_pem: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "config": str(self.config_path),
            "device_id": self.config.device.id,
            "mode": self.config.device.mode,
            "data_dir": str(self.config.device.data_dir),
            "mqtt": self.config.mqtt.url if self.config.mqtt.enabled else "disabled",
            "shard_id": self.config.mqtt.shard_id,
            "pin_key_file": str(self.pin_key_file),
            "device_public_key": self.public_key_pem,
            "device_x25519_public_key": self.box_public_key_pem,
        }


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """TOML tables as plain values: no None (TOML has no null), paths as strings."""
    return {
        k: _plain(v) if isinstance(v, dict) else str(v) if isinstance(v, Path) else v
        for k, v in values.items()
        if v is not None
    }


def to_toml(sections: dict[str, dict[str, Any]]) -> str:
    return "# Written by `blinkpay provision`; other keys keep their defaults.\n\n" + tomli_w.dumps(
        sections
    )


def provision(
    config_path: Path,
    sections: dict[str, dict[str, Any]],
    *,
    pin_key: bytes | None = None,
    force: bool = False,
) -> Provisioned:
    """Validate the settings, make the keys under device.data_dir, write the config file.

    sections: TOML sections as dicts (device, mqtt, ...). pin_key: the host's PIN key
    (None makes one, for a host that takes it from the terminal). Refuses to replace
    existing keys or config unless `force`.
    """
    sections = _plain(sections)
    try:
        config = config_from_mapping(sections, "provision")
    except ConfigError as exc:
        raise BlinkpayError(str(exc)) from None
    if config_path.exists() and not force:
        raise BlinkpayError(f"{config_path} exists; use --force to replace it")
    data_dir = Path(config.device.data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        _, signing_key = provision_keys(
            store_key_paths(config.store, config.device.data_dir), overwrite=force
        )
        pin_key_file = data_dir / config.store.pin_key_file
        key = pin_key if pin_key is not None else secrets.token_bytes(PIN_KEY_BYTES)
        if len(key) not in (16, 24, 32):
            raise BlinkpayError("the PIN key must be 16, 24 or 32 bytes")
        write_private_file(pin_key_file, key.hex().encode() + b"\n", overwrite=force)
        box_key = generate_box_key(data_dir / config.store.box_key_file, overwrite=force)
    except KeyFileError as exc:
        raise BlinkpayError(f"{exc} (use --force to make new keys)") from None
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(to_toml(sections), encoding="utf-8")
    return Provisioned(
        config_path,
        config,
        public_key_pem(signing_key),
        pin_key_file,
        box_public_pem(box_key).decode("ascii"),
    )


def read_pin_key(path: Path) -> bytes:
    """The AES PIN key shared with the host (hex in a 0600 file, made by provision)."""
    raw = read_private_file(path).strip()
    try:
        key = bytes.fromhex(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise BlinkpayError(f"{path}: the PIN key must be hex digits") from None
    if len(key) not in (16, 24, 32):
        raise BlinkpayError(f"{path}: the PIN key must be 16, 24 or 32 bytes")
    return key


def key_problems(config: Config) -> list[str]:
    """Every key file `run` would load, loaded the same way: missing, unreadable, too widely
    readable or not a key is a problem here, so `config check` fails where `run` would."""
    data_dir = Path(config.device.data_dir)
    paths = store_key_paths(config.store, data_dir)
    loaders: list[tuple[str, Path | None, Any]] = [
        ("store.data_key_file", paths.data_key, load_data_key),
        ("store.signing_key_file", paths.signing_key, load_signing_key),
        ("store.pin_key_file", data_dir / config.store.pin_key_file, read_pin_key),
        ("store.box_key_file", data_dir / config.store.box_key_file, load_box_key),
    ]
    if config.mqtt.enabled:
        backend = config.mqtt.backend_public_key_file
        loaders.append(("mqtt.backend_public_key_file", backend, load_public_key))
    problems = []
    for key, path, load in loaders:
        if path is None:
            problems.append(f"{key}: not set (run `blinkpay provision --backend-key ...`)")
            continue
        try:
            load(path)
        except BlinkpayError as exc:
            problems.append(f"{key}: {exc}")
    return problems
