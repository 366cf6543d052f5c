"""`blinkpay provision`: device keys, the PIN key, broker and backend settings, the config."""

from __future__ import annotations

import argparse
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.commands._common import print_json
from device.config import Config, ConfigError, config_from_mapping
from device.errors import BlinkpayError
from device.paths import DEFAULT_CONFIG_PATH, DEFAULT_DATA_DIR
from device.store.keys import (
    KeyFileError,
    provision_keys,
    public_key_pem,
    write_private_file,
)
from device.store.store import store_key_paths

HELP = "make device keys and write the config"
PIN_KEY_BYTES = 32  # AES-256 for the ISO 9564 format 4 PIN block


@dataclass(frozen=True)
class Provisioned:
    config_path: Path
    config: Config
    public_key_pem: str
    pin_key_file: Path

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
        }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: _without_none(v) if isinstance(v, dict) else v
        for k, v in values.items()
        if v is not None
    }


def to_toml(sections: dict[str, dict[str, Any]], prefix: str = "") -> str:
    """Tables of scalars (and nested tables) as TOML; the standard library only reads TOML."""
    lines = (
        [] if prefix else ["# Written by `blinkpay provision`; other keys keep their defaults.", ""]
    )
    for name, values in sections.items():
        table = f"{prefix}{name}"
        lines.append(f"[{table}]")
        lines += [
            f"{key} = {_toml_value(v)}" for key, v in values.items() if not isinstance(v, dict)
        ]
        lines.append("")
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        if nested:
            lines.append(to_toml(nested, f"{table}."))
    return "\n".join(lines)


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
    sections = _without_none(sections)
    try:
        config = config_from_mapping(sections, "provision")
    except ConfigError as exc:
        raise BlinkpayError(str(exc)) from None
    if config_path.exists() and not force:
        raise BlinkpayError(f"{config_path} exists; use --force to replace it")
    data_dir = Path(config.device.data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        _, signing_key = provision_keys(store_key_paths(config), overwrite=force)
        pin_key_file = data_dir / config.store.pin_key_file
        key = pin_key if pin_key is not None else secrets.token_bytes(PIN_KEY_BYTES)
        if len(key) not in (16, 24, 32):
            raise BlinkpayError("the PIN key must be 16, 24 or 32 bytes")
        write_private_file(pin_key_file, key.hex().encode() + b"\n", overwrite=force)
    except KeyFileError as exc:
        raise BlinkpayError(f"{exc} (use --force to make new keys)") from None
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(to_toml(sections), encoding="utf-8")
    return Provisioned(config_path, config, public_key_pem(signing_key), pin_key_file)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-out", type=Path, default=DEFAULT_CONFIG_PATH)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--device-id", default=None, help="default: blinkpay-<random>")
    parser.add_argument("--mode", choices=["turnstile", "vending"], default="turnstile")
    parser.add_argument("--broker", default=None, help="mqtt(s)://host:port; none: MQTT off")
    parser.add_argument("--shard-id", default="default")
    parser.add_argument("--ca-file", type=Path)
    parser.add_argument("--cert-file", type=Path)
    parser.add_argument("--key-file", type=Path)
    parser.add_argument("--backend-key", type=Path, help="the host's Ed25519 public key (PEM)")
    parser.add_argument("--pin-key", type=Path, help="the host's PIN key (hex); default: new")
    parser.add_argument("--sim", action="store_true", help="simulated hardware")
    parser.add_argument("--force", action="store_true", help="replace existing keys and config")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    pin_key = None
    if args.pin_key is not None:
        try:
            pin_key = bytes.fromhex(args.pin_key.read_text(encoding="ascii").strip())
        except (OSError, ValueError) as exc:
            raise BlinkpayError(f"--pin-key {args.pin_key}: {exc}") from None
    broker = None if args.broker in (None, "none") else args.broker
    sections: dict[str, dict[str, Any]] = {
        "device": {
            "id": args.device_id or f"blinkpay-{secrets.token_hex(4)}",
            "mode": args.mode,
            "data_dir": str(args.data_dir.resolve()),
        },
        "hardware": {"backend": "sim" if args.sim else "rpi"},
        "mqtt": {
            "enabled": broker is not None,
            "url": broker,
            "shard_id": args.shard_id,
            "ca_file": args.ca_file,
            "cert_file": args.cert_file,
            "key_file": args.key_file,
            "backend_public_key_file": args.backend_key,
        },
    }
    sections["hardware"]["camera"] = {"source": "synthetic" if args.sim else "picamera2"}
    result = provision(args.config_out, sections, pin_key=pin_key, force=args.force)
    if args.json:
        print_json(result.summary())
    else:
        for key, value in result.summary().items():
            print(f"{key}: {value}" if key != "device_public_key" else f"{key}:\n{value}")
    return 0
