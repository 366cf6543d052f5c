"""`blinkpay provision`: device keys, the PIN key, broker and backend settings, the config."""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path
from typing import Any

from device.cli._common import print_json
from device.errors import BlinkpayError
from device.paths import DEFAULT_CONFIG_PATH, DEFAULT_DATA_DIR
from device.provisioning import provision

HELP = "make device keys and write the config"


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
            multiline = key in ("device_public_key", "device_x25519_public_key")
            print(f"{key}:\n{value}" if multiline else f"{key}: {value}")
    return 0
