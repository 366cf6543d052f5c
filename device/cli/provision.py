"""`blinkpay provision`: device keys, the PIN key, broker and backend settings, the config."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from device.cli._common import print_json
from device.errors import BlinkpayError
from device.hw.platform import DEVICE_TREE_MODEL, raspberry_pi_model
from device.paths import DEFAULT_CONFIG_PATH, DEFAULT_DATA_DIR
from device.provisioning import Owner, provision

HELP = "make device keys and write the config"
SERVICE_USER = "blinkpay"
DESCRIPTION = f"""\
Make this terminal's keys and write its config, in one step. By default it writes
  {DEFAULT_CONFIG_PATH}   the config, merged into the file there (root:{SERVICE_USER} 0640)
  {DEFAULT_DATA_DIR}/keys/   data.key, device_ed25519.pem, pin.key (0600)
Run it as root on an installed terminal (sudo blinkpay provision ...): the data directory
and the keys then belong to the service user `{SERVICE_USER}`. Running it again keeps the
existing keys and updates the settings; --force makes new keys (never the data key of an
existing database: `blinkpay db rekey` rotates that), and is needed to give a provisioned
terminal another device id or shard. It writes the device's public keys to
{DEFAULT_DATA_DIR}/keys/device_ed25519.pub.pem and device_x25519.pub.pem and prints the
command that registers them at the host (`blinkpay-host device add ...`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = DESCRIPTION
    parser.add_argument(
        "--config-out",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"the config file to write (default {DEFAULT_CONFIG_PATH})",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where the keys and the database live (default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument(
        "--device-id",
        default=None,
        help="this terminal's id, e.g. gate-12 (default: the one it has, else random)",
    )
    parser.add_argument(
        "--mode",
        choices=["turnstile", "vending"],
        default="turnstile",
        help="turnstile (a gate relay) or vending (default turnstile)",
    )
    parser.add_argument(
        "--broker",
        default=None,
        help="the site's broker as mqtt://host:port or mqtts://host:port; none or "
        "omitted: MQTT off (an offline terminal)",
    )
    parser.add_argument(
        "--shard-id",
        default=None,
        help="the shard of customers this terminal serves (default: the one it has, else "
        "`default`)",
    )
    parser.add_argument("--ca-file", type=Path, help="CA certificate of the broker (mqtts)")
    parser.add_argument(
        "--cert-file", type=Path, help="this terminal's client certificate (mutual TLS)"
    )
    parser.add_argument("--key-file", type=Path, help="the key of --cert-file")
    parser.add_argument(
        "--backend-key",
        type=Path,
        help="file with the host's Ed25519 public key (PEM: signing.pub.pem from "
        "`blinkpay-host keys`)",
    )
    parser.add_argument(
        "--pin-key",
        type=Path,
        metavar="FILE",
        help="a file holding the host's PIN key as hex (pin.key from `blinkpay-host keys`); "
        "default: keep this terminal's, or make a new one",
    )
    parser.add_argument(
        "--mqtt-password",
        type=Path,
        metavar="FILE",
        help="a file holding this terminal's broker password (issued by `blinkpay-host device "
        "add`, docs/broker.md): copied to the data directory's keys/mqtt.password (0600), "
        "with the device id as the broker user name",
    )
    parser.add_argument(
        "--owner",
        default=None,
        help=f"user who owns the keys and data directory (default: {SERVICE_USER} when run "
        f"as root for {DEFAULT_DATA_DIR}, else the user running provision)",
    )
    parser.add_argument(
        "--sim",
        action="store_true",
        help="simulated GPIO and camera (the default off a Raspberry Pi: the rpi backend "
        "cannot start there)",
    )
    # Tests point this at a file that says "Raspberry Pi ..." to act as a Pi.
    parser.add_argument(
        "--board-model-file", type=Path, default=DEVICE_TREE_MODEL, help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="make new keys even where keys exist (see above); needed to give a provisioned "
        "terminal another device id or shard",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _read_pin_key(path: Path) -> bytes:
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except IsADirectoryError:
        raise BlinkpayError(f"--pin-key {path}: is a directory; give the pin.key file") from None
    except OSError as exc:
        raise BlinkpayError(f"--pin-key {path}: {exc.strerror}") from None
    except ValueError:
        raise BlinkpayError(f"--pin-key {path}: not a file of hex digits") from None


def _read_mqtt_password(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except IsADirectoryError:
        raise BlinkpayError(f"--mqtt-password {path}: is a directory; give the file") from None
    except OSError as exc:
        raise BlinkpayError(f"--mqtt-password {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BlinkpayError(f"--mqtt-password {path}: not a text file") from None
    if not text or any(c.isspace() for c in text):
        raise BlinkpayError(f"--mqtt-password {path}: give the password on one line")
    return text


def _owner(args: argparse.Namespace) -> Owner | None:
    """The service user when root provisions the installed layout, else nobody in particular."""
    if args.owner is not None:
        return Owner.named(args.owner)
    if os.geteuid() == 0 and args.data_dir.resolve() == DEFAULT_DATA_DIR:
        return Owner.named(SERVICE_USER)
    return None


def _simulated(args: argparse.Namespace) -> bool:
    if args.sim:
        return True
    if raspberry_pi_model(args.board_model_file) is None:
        print("provision: not a Raspberry Pi: simulated hardware (backend sim)", file=sys.stderr)
        return True
    return False


def _check_given_files(args: argparse.Namespace) -> None:
    """Every file named on the command line exists, before anything is written."""
    given = {"--backend-key": args.backend_key, "--ca-file": args.ca_file,
             "--cert-file": args.cert_file, "--key-file": args.key_file}  # fmt: skip
    for option, path in given.items():
        if path is not None and not path.is_file():
            why = "is a directory" if path.is_dir() else "no such file"
            raise BlinkpayError(f"{option} {path}: {why}; give the path of the file")


def run(args: argparse.Namespace) -> int:
    _check_given_files(args)
    pin_key = _read_pin_key(args.pin_key) if args.pin_key is not None else None
    mqtt_password = None if args.mqtt_password is None else _read_mqtt_password(args.mqtt_password)
    sim = _simulated(args)
    broker = None if args.broker in (None, "none") else args.broker
    sections: dict[str, dict[str, Any]] = {
        "device": {
            "id": args.device_id,  # None: keep this terminal's, or a random one the first time
            "mode": args.mode,
            "data_dir": str(args.data_dir.resolve()),
        },
        "hardware": {"backend": "sim" if sim else "rpi"},
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
    sections["hardware"]["camera"] = {"source": "synthetic" if sim else "picamera2"}
    result = provision(
        args.config_out,
        sections,
        pin_key=pin_key,
        force=args.force,
        owner=_owner(args),
        mqtt_password=mqtt_password,
    )
    for warning in result.warnings:
        print(f"blinkpay provision: warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(result.summary())
    else:
        for key, value in result.summary().items():
            if key not in ("device_public_key", "device_x25519_public_key"):  # files above
                print(f"{key}: {value}")
        print(
            "register it at the host: blinkpay-host device add "
            f"{result.config.device.id} {result.public_key_file} "
            f"--x25519 {result.box_public_key_file} --shard {result.config.mqtt.shard_id}"
        )
    return 0
